"""What a version changed from the one before, per kind, by item id.

Items are compared whole (as JSON values); an item is known by its id: a category by `code`, a
department or rule by `id`, a zone by its feature's `properties.id`, a door plate by `address`,
the calendar by key. The lists are capped (a door-plate import may touch thousands); the counts
are not.
"""

from __future__ import annotations

import json
from typing import Any

SHOWN = 200  # ids listed per list; `counts` has the totals


def item_key(kind: str, item: Any, index: int) -> str:
    if isinstance(item, dict):
        if kind == "categories":
            value = item.get("code")
        elif kind == "zones":
            value = (item.get("properties") or {}).get("id") if isinstance(item.get("properties"), dict) else None
        elif kind == "addresses":
            value = item.get("address")
        else:
            value = item.get("id")
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return f"#{index}"


def keyed(kind: str, items: Any) -> dict:
    """{id: item} in order; the calendar and the rules' fallback are keyed by their keys."""
    if kind == "calendar":
        return dict(items) if isinstance(items, dict) else {}
    if kind == "rules":
        data = items if isinstance(items, dict) else {}
        out = {"fallback": data.get("fallback")} if "fallback" in data else {}
        rules = data.get("rules") if isinstance(data.get("rules"), list) else []
        out.update((item_key(kind, r, i), r) for i, r in enumerate(rules))
        return out
    if not isinstance(items, list):
        return {}
    out: dict = {}
    for i, item in enumerate(items):
        out.setdefault(item_key(kind, item, i), item)
    return out


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, ensure_ascii=False, default=str) == \
        json.dumps(b, sort_keys=True, ensure_ascii=False, default=str)


def diff(kind: str, before: Any, after: Any) -> dict:
    """{added, removed, changed: [ids], counts: {...}, reordered: bool}."""
    old, new = keyed(kind, before), keyed(kind, after)
    added = [k for k in new if k not in old]
    removed = [k for k in old if k not in new]
    changed = [k for k in new if k in old and not _same(old[k], new[k])]
    common_old = [k for k in old if k in new]
    common_new = [k for k in new if k in old]
    return {
        "added": added[:SHOWN], "removed": removed[:SHOWN], "changed": changed[:SHOWN],
        "counts": {"added": len(added), "removed": len(removed), "changed": len(changed), "items": len(new)},
        "reordered": common_old != common_new,
    }


def same_items(a: Any, b: Any) -> bool:
    return _same(a, b)
