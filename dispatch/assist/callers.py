"""Repeat callers and similar cases.

* A caller's recent tickets are found by their number in the forms operators type it
  (13812345678, 138-1234-5678, +86 …, 0571-87654321).
* A new call looks like a repeat request (重复诉求) of an open case when it comes from the same
  caller, or from the same place with similar words, within the window: `repeat_of` names that
  case (the master, when the earlier ticket was itself merged), for one-click 并案.
* Similar open cases nearby are ranked by text similarity weighed with distance and category.

Text similarity is the Dice coefficient of character bigrams: no model needed, and it works
on the few words an operator has typed so far.
"""

from __future__ import annotations

import math
import re

from dispatch.domain import phone_digits
from dispatch.errors import bad_request

_PHONE_CHARS = re.compile(r"^\+?[0-9][0-9\- ()（）]{2,24}$")
_PUNCT = re.compile(r"[\s，。、！？,.!?；;：:“”\"'（）()]+")

# weights of a similar case's score: words, place, category
W_TEXT, W_PLACE, W_CATEGORY = 0.55, 0.3, 0.15
SAME_PLACE_M = 150          # "the same place" for a repeat request
REPEAT_TEXT = 0.3           # similar enough words (Dice of bigrams) at the same place
CALLER_REPEAT_TEXT = 0.12   # the same caller needs only a hint of the same subject


def phone_forms(raw: str | None) -> list[str] | None:
    """The written forms of a number to look up, or None if there is none. A string that is no
    phone number at all is a 400."""
    if raw is None or not raw.strip():
        return None
    raw = raw.strip()
    if len(raw) > 25 or not _PHONE_CHARS.match(raw):
        raise bad_request("来电号码格式无法识别：只能包含数字、+、-、空格和括号", code="invalid_value", field="phone")
    digits = phone_digits(raw)
    if len(digits) < 5:
        raise bad_request("来电号码太短，无法查询来电记录", code="invalid_value", field="phone")
    forms = {raw, digits}
    if len(digits) == 11 and digits[0] == "1":
        a, b, c = digits[:3], digits[3:7], digits[7:]
        forms |= {f"{a}-{b}-{c}", f"{a} {b} {c}", f"+86{digits}", f"+86 {digits}", f"+86-{digits}", f"86{digits}",
                  f"+86 {a} {b} {c}"}
    elif digits.startswith("0"):
        for cut in (3, 4):
            forms |= {f"{digits[:cut]}-{digits[cut:]}", f"{digits[:cut]} {digits[cut:]}"}
    return sorted(forms)


def bigrams(text: str) -> set[str]:
    t = _PUNCT.sub("", text or "")
    return {t[i:i + 2] for i in range(len(t) - 1)} if len(t) > 1 else ({t} if t else set())


def text_similarity(a: str, b: str) -> float:
    x, y = bigrams(a), bigrams(b)
    if not x or not y:
        return 0.0
    return 2 * len(x & y) / (len(x) + len(y))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat = math.radians((a[1] + b[1]) / 2)
    dx = (a[0] - b[0]) * 111_320 * math.cos(lat)
    dy = (a[1] - b[1]) * 110_540
    return math.hypot(dx, dy)


def point_of(case: dict) -> tuple[float, float] | None:
    loc = case.get("location") or {}
    coords = loc.get("coordinates")
    return (coords[0], coords[1]) if coords else None


def similar_score(text: str, place, category: str | None, case: dict, radius_m: float) -> tuple[float, dict]:
    """How much `case` looks like the call being taken (0..1), and its parts."""
    words = text_similarity(text, case.get("description") or "")
    where = point_of(case)
    metres = distance_m(place, where) if place and where else None
    near = max(0.0, 1 - metres / radius_m) if metres is not None else 0.0
    same = 1.0 if category and (case.get("category") or {}).get("code") == category else 0.0
    score = W_TEXT * words + W_PLACE * near + W_CATEGORY * same
    return score, {"text": round(words, 3), "distance_m": round(metres) if metres is not None else None,
                   "same_category": bool(same)}


def repeat_candidate(text: str, place, category: str | None, case: dict, same_caller: bool) -> bool:
    """Whether the call being taken looks like the same request as open `case`."""
    words = text_similarity(text, case.get("description") or "")
    if same_caller:
        same_category = bool(category) and (case.get("category") or {}).get("code") == category
        return not text.strip() or words >= CALLER_REPEAT_TEXT or same_category
    where = point_of(case)
    return bool(place and where) and distance_m(place, where) <= SAME_PLACE_M and words >= REPEAT_TEXT
