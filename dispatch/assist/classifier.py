"""The category suggestion model: character n-gram TF-IDF with a multinomial logistic regression.

Chinese has no spaces, and callers misspell and speak dialect, so the features are character
1–3-grams rather than words (no segmenter, nothing downloaded). The model is small enough to be
pickled into the store (float32 coefficients, zlib), so every process loads the same fitted
parameters instead of training its own.
"""

from __future__ import annotations

import io
import pickle
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

# Below this, a model would only echo the category names back: refuse and keep the old one.
MIN_EXAMPLES = 100
MIN_CATEGORIES = 2
MAX_FEATURES = 10000
_SPACE = re.compile(r"\s+")


class TooLittleData(ValueError):
    """The training set is too small to replace the model in use."""


def normalise(text: str) -> str:
    return _SPACE.sub(" ", (text or "").strip().lower())


@dataclass
class CategoryModel:
    version: int
    examples: int
    trained_at: datetime | None
    codes: list
    vectorizer: TfidfVectorizer = field(repr=False)
    coef: np.ndarray = field(repr=False)       # (classes, features) float32
    intercept: np.ndarray = field(repr=False)  # (classes,)
    per_category: dict = field(default_factory=dict)

    def scores(self, texts: list[str]) -> np.ndarray:
        """Probabilities, one row per text, one column per code in `codes`."""
        x = self.vectorizer.transform([normalise(t) for t in texts])
        logits = np.asarray(x @ self.coef.T) + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def suggest(self, text: str, k: int = 3, allowed=None) -> list[tuple[str, float]]:
        """The `k` most likely codes for `text`, best first, with their probability."""
        if not normalise(text):
            return []
        row = self.scores([text])[0]
        order = np.argsort(-row)
        out = []
        for i in order:
            code = self.codes[i]
            if allowed is not None and code not in allowed:
                continue
            out.append((code, float(row[i])))
            if len(out) == k:
                break
        return out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        pickle.dump({"codes": self.codes, "vectorizer": self.vectorizer, "coef": self.coef,
                     "intercept": self.intercept, "per_category": self.per_category}, buf,
                    protocol=pickle.HIGHEST_PROTOCOL)
        return zlib.compress(buf.getvalue(), 6)

    @classmethod
    def from_bytes(cls, blob: bytes, version: int, examples: int, trained_at: datetime | None) -> "CategoryModel":
        # Only ever a blob this module wrote into our own store (never user input).
        data = pickle.loads(zlib.decompress(blob))
        return cls(version, examples, trained_at, data["codes"], data["vectorizer"], data["coef"],
                   data["intercept"], data.get("per_category", {}))


def category_texts(category) -> list[str]:
    """What the city package itself teaches about a category: its name, keywords, examples."""
    return [category.name, *category.keywords, *category.examples]


def fit(texts: list[str], labels: list[str], version: int, trained_at: datetime | None = None) -> CategoryModel:
    """Train on (text, code) pairs. Raises TooLittleData when there is too little to learn from."""
    pairs = [(normalise(t), c) for t, c in zip(texts, labels) if normalise(t)]
    codes = sorted({c for _, c in pairs})
    if len(pairs) < MIN_EXAMPLES or len(codes) < MIN_CATEGORIES:
        raise TooLittleData(f"训练样本太少：{len(pairs)} 条、{len(codes)} 个类别（至少需要 {MIN_EXAMPLES} 条、"
                            f"{MIN_CATEGORIES} 个类别）；继续使用当前模型")
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=1,
                                 max_features=MAX_FEATURES, dtype=np.float32)
    x = vectorizer.fit_transform([t for t, _ in pairs])
    y = [c for _, c in pairs]
    clf = LogisticRegression(C=20.0, max_iter=300, tol=1e-3)
    clf.fit(x, y)
    per_category: dict[str, int] = {}
    for c in y:
        per_category[c] = per_category.get(c, 0) + 1
    return CategoryModel(version, len(pairs), trained_at, list(clf.classes_), vectorizer,
                         clf.coef_.astype(np.float32), clf.intercept_.astype(np.float32), per_category)


def keyword_baseline(categories: dict):
    """The baseline the benchmark compares against: count the category's name and keywords found
    in the text (what a search box over `keywords` would do)."""
    words = {code: [c.name, *c.keywords] for code, c in categories.items()}

    def suggest(text: str, k: int = 3) -> list[str]:
        hits = sorted(((sum(len(w) for w in ws if w and w in text), code) for code, ws in words.items()),
                      key=lambda h: -h[0])
        return [code for n, code in hits[:k] if n > 0]

    return suggest
