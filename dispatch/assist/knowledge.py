"""The knowledge base (知识库): articles searched by character n-grams ranked with BM25, and the
versioned copy in the store that every process follows.

Chinese is searched without a segmenter: an article's title, questions and tags (counted twice:
they are how callers ask) and its answer are cut into character unigrams and bigrams, and a
query is scored against them with BM25 as one sparse matrix product, which keeps a search over
10,000 articles to a few milliseconds (bench/classify.py).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer

from geo.city import Article
from geo.errors import CityPackageError, where
from geo.loader import parse_articles

log = logging.getLogger(__name__)

K1, B = 1.2, 0.75
MIN_SCORE = 1.0  # below this a hit shares only a character or two with the question


def _text(article: dict) -> str:
    asked = " ".join([article["title"], *article.get("questions", ()), *article.get("tags", ())])
    return f"{asked} {asked} {article['answer']}"


class KnowledgeIndex:
    """BM25 over character 1–2-grams of a fixed list of articles (dicts with the SPEC §2 fields)."""

    def __init__(self, articles: list[dict]):
        self.articles = list(articles)
        self.vectorizer = CountVectorizer(analyzer="char", ngram_range=(1, 2), lowercase=True, dtype=np.float32)
        if not self.articles:
            self.weights = None
            return
        tf = self.vectorizer.fit_transform([_text(a) for a in self.articles]).tocsr().astype(np.float32)
        n = tf.shape[0]
        df = np.bincount(tf.indices, minlength=tf.shape[1])
        idf = np.log(1 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        length = np.asarray(tf.sum(axis=1)).ravel()
        norm = K1 * (1 - B + B * length / max(length.mean(), 1.0))
        # BM25 term weight, per stored non-zero: idf * tf (k1 + 1) / (tf + k1 (1 - b + b len/avg))
        rows = np.repeat(np.arange(n), np.diff(tf.indptr))
        data = tf.data * (K1 + 1) / (tf.data + norm[rows]) * idf[tf.indices]
        self.weights = sparse.csr_matrix((data, tf.indices, tf.indptr), shape=tf.shape).T.tocsr()  # terms × docs

    def search(self, query: str, limit: int = 5, on: date | None = None) -> list[dict]:
        """The best `limit` articles for `query`, each {…article, score}; articles not valid on
        `on` (valid_from/valid_to) are left out."""
        if self.weights is None or not (query or "").strip():
            return []
        q = self.vectorizer.transform([query[:500]])
        terms = np.unique(q.indices)
        if not len(terms):
            return []
        scores = np.asarray(self.weights[terms].sum(axis=0)).ravel()
        candidates = np.argsort(-scores)[: limit * 4]
        out = []
        for i in candidates:
            if scores[i] < MIN_SCORE:
                break
            a = self.articles[i]
            if on is not None and not valid_on(a, on):
                continue
            out.append({**a, "score": round(float(scores[i]), 3)})
            if len(out) == limit:
                break
        return out


def valid_on(article: dict, day: date) -> bool:
    start, end = article.get("valid_from"), article.get("valid_to")
    return (start is None or date.fromisoformat(start) <= day) and (end is None or day <= date.fromisoformat(end))


def article_dict(a: Article) -> dict:
    return {"id": a.id, "title": a.title, "questions": list(a.questions), "answer": a.answer,
            "category": a.category, "department": a.department,
            "valid_from": a.valid_from.isoformat() if a.valid_from else None,
            "valid_to": a.valid_to.isoformat() if a.valid_to else None, "tags": list(a.tags)}


FIELDS = ("id", "title", "questions", "answer", "category", "department", "valid_from", "valid_to", "tags")


# What the API promises to keep (dispatch/openapi.py ARTICLE_FIELDS): text lengths and list sizes.
TEXT_LIMITS = {"title": 200, "answer": 4000}
LIST_LIMITS = {"questions": (50, 200), "tags": (20, 50)}  # at most n items of at most m characters


def _too_long(body: dict) -> list[str]:
    problems = []
    for key, most in TEXT_LIMITS.items():
        if isinstance(body.get(key), str) and len(body[key].strip()) > most:
            problems.append(f"{key} 超过 {most} 个字符")
    for key, (items, chars) in LIST_LIMITS.items():
        value = body.get(key)
        if not isinstance(value, list):
            continue
        if len(value) > items:
            problems.append(f"{key} 超过 {items} 项")
        if any(isinstance(x, str) and len(x.strip()) > chars for x in value):
            problems.append(f"{key} 中有一项超过 {chars} 个字符")
    return problems


def article_problems(items, city, file: str = "knowledge.yaml") -> tuple[list[dict], list[str]]:
    """Articles sent by an admin, checked by the city-package loader's rules and the API's
    limits: (the articles, []) or ([], every problem as a `file: item: problem` line)."""
    limits = []
    for i, body in enumerate(items if isinstance(items, list) else []):
        if isinstance(body, dict):
            limits += [f"{file}: {where('article', i, body.get('id'))}: {p}" for p in _too_long(body)]
    try:
        articles = parse_articles(items, city.categories, city.departments, file=file)
    except CityPackageError as exc:
        return [], exc.errors + limits
    if limits:
        return [], limits
    return [article_dict(a) for a in articles], []


def checked_article(body: dict, city) -> dict:
    """One article sent by an admin, checked (raises CityPackageError listing every problem)."""
    articles, problems = article_problems([body], city, file="knowledge")
    if problems:
        raise CityPackageError("；".join(problems), problems)
    return articles[0]


class KnowledgeBase:
    """This process's view of the knowledge base: the store's newest version of every article,
    indexed. Seeded once from the city package; follows the store (`refresh`)."""

    REFRESH_SECONDS = 3.0

    def __init__(self, city, repository, clock):
        self.city = city
        self.repo = repository
        self.clock = clock
        self.revision = -1
        self.heads: dict[str, dict] = {}
        self.index = KnowledgeIndex([])
        self._lock = asyncio.Lock()
        self._checked_at: datetime | None = None

    async def seed(self) -> None:
        """Version 1 of every article of knowledge.yaml not in the store yet (insert-once: several
        processes starting together store it once)."""
        known = {d["id"] for d in await self.repo.heads()}
        for a in self.city.knowledge:
            if a.id not in known:
                await self.repo.put({**article_dict(a), "version": 1, "deleted": False, "at": self.clock(),
                                     "by": "city-package", "note": "城市包 knowledge.yaml"})
        await self.refresh(force=True)

    async def refresh(self, force: bool = False) -> None:
        now = self.clock()
        if not force and self._checked_at and (now - self._checked_at).total_seconds() < self.REFRESH_SECONDS:
            return
        async with self._lock:
            self._checked_at = now
            revision = await self.repo.revision()
            if revision == self.revision and not force:
                return
            heads = await self.repo.heads()
            self.heads = {d["id"]: d for d in heads}
            live = [public(d) for d in heads if not d.get("deleted")]
            self.index = await asyncio.get_running_loop().run_in_executor(None, KnowledgeIndex, live)
            self.revision = revision

    def search(self, query: str, limit: int = 5, on: date | None = None) -> list[dict]:
        return self.index.search(query, limit, on)

    def get(self, article_id: str) -> dict | None:
        d = self.heads.get(article_id)
        return public(d) if d and not d.get("deleted") else None


def public(doc: dict) -> dict:
    out = {k: doc.get(k) for k in FIELDS}
    out["version"] = doc.get("version")
    return out
