"""A `Change` applied to a document in Python, as MongoDB would apply the equivalent update.

The embedded engine keeps its documents this way. The server engine uses it too: FerretDB 1.24
does not apply a filtered update atomically (two version-guarded updates of one version may
both report success, and `$inc` loses increments under concurrency), so the server engine
computes the new document here and writes it under an insert-once claim (see `mongo.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dispatch.store.query import Change
from dispatch.clock import stored_instant


def stored_value(value):
    """A deep copy with datetimes as MongoDB keeps them: UTC, millisecond precision."""
    if isinstance(value, dict):
        return {k: stored_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [stored_value(v) for v in value]
    if isinstance(value, datetime):
        return stored_instant(value)
    return value


def copied(value):
    """A deep copy of a stored value (already normalised)."""
    if isinstance(value, dict):
        return {k: copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copied(v) for v in value]
    return value


def get_path(doc: dict, path: str, default=None):
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def parent_of(doc: dict, path: str, create: bool):
    """The container that holds the last part of `path`, and that part (a key or list index)."""
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if isinstance(node, list):
            index = int(part)
            child = node[index] if -len(node) <= index < len(node) else None
        else:
            child = node.get(part)
        if not isinstance(child, (dict, list)):
            if not create or isinstance(node, list):
                return None, parts[-1]
            child = node[part] = {}
        node = child
    last = parts[-1]
    if isinstance(node, list):
        return _ListSlot(node), int(last)
    return node, last


class _ListSlot:
    """A list seen through the dict methods `apply_change` uses."""

    def __init__(self, items: list):
        self.items = items

    def __setitem__(self, index: int, value) -> None:
        self.items[index] = value

    def __getitem__(self, index: int):
        return self.items[index]

    def get(self, index: int, default=None):
        return self.items[index] if -len(self.items) <= index < len(self.items) else default

    def pop(self, index: int, default=None):
        if -len(self.items) <= index < len(self.items):
            self.items[index] = None  # MongoDB's $unset of an element leaves null in its place
        return default

    def setdefault(self, index: int, default):
        return self.items[index]


def apply_change(doc: dict, change: Change) -> None:
    """`change` applied to `doc` in place, as MongoDB applies the equivalent update."""
    for path, value in change.sets.items():
        parent, key = parent_of(doc, path, create=True)
        parent[key] = stored_value(value)
    for path in change.unsets:
        if path in change.sets:
            continue
        parent, key = parent_of(doc, path, create=False)
        if parent is not None:
            parent.pop(key, None)
    for path, amount in change.inc.items():
        parent, key = parent_of(doc, path, create=True)
        parent[key] = (parent.get(key) or 0) + amount
    for path, items in change.push.items():
        parent, key = parent_of(doc, path, create=True)
        parent.setdefault(key, []).extend(stored_value(item) for item in items)
    for path, values in change.add_to_set.items():
        parent, key = parent_of(doc, path, create=True)
        array = parent.setdefault(key, [])
        for value in values:
            value = stored_value(value)
            if value not in array:
                array.append(value)
    for path, values in change.pull_values.items():
        parent, key = parent_of(doc, path, create=False)
        if parent is not None and isinstance(parent.get(key), list):
            parent[key] = [v for v in parent[key] if v not in values]
    for path, where in change.pull_matching.items():
        parent, key = parent_of(doc, path, create=False)
        if parent is not None and isinstance(parent.get(key), list):
            parent[key] = [v for v in parent[key]
                           if not (isinstance(v, dict) and all(v.get(k) == w for k, w in where.items()))]
    doc["version"] = doc.get("version", 0) + 1


