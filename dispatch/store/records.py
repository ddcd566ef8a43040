"""What both engines share about stored records: derived keys and field selections."""

from __future__ import annotations

from dispatch.domain import OPEN_STATUSES  # noqa: F401 - the engines' word for "open"
from dispatch.store.change import copied

# Who looked at or changed what outside a case's own history: each unmasking of a caller
# (`reveals`) and each account change by an administrator (`admin_audit`); each dispatch
# catalogue entry a department's approved return disputed (`catalogue_disputes`, 派单异议).
AUDIT_KINDS = ("reveals", "admin_audit", "catalogue_disputes")

# Where a case refers to photos: the report itself, the department's feedback, the check.
PHOTO_FIELDS = ("photos", "result.photos", "check.photos")

# What the deadline sweep reads of a due case: the last history entry is enough to chain the
# next one, and leaving out the rest keeps a busy sweep from copying whole histories.
DUE_FIELDS = ("_id", "version", "status", "clock", "next_due_at", "flags", "assignment", "scope_path", "history",
              "support")


# A KPI day or month bucket (dispatch/kpi/rollups.py) is also filed under the bucket one level up
# that holds it — a day's month, a month's year — and its district (`shelf`): a report over many
# days or months reads a district's buckets of one month or year at once (an equality) instead
# of one by `_id` each.
BUCKET_SHELF = "shelf"
# Levels (rollups.DAY, rollups.MONTH) shelved: the length of the holding bucket's name ("2026-11", "2026").
SHELVED = {"d": 7, "m": 4}


def shelf(within: str, district: str | None) -> str:
    """The shelf of the buckets within `within` (a month "YYYY-MM": its days; a year "YYYY":
    its months) and `district`."""
    return f"{within}|{district or ''}"


def bucket_shelf(doc: dict) -> str | None:
    """A bucket document's shelf: None for a year or state bucket."""
    length = SHELVED.get(doc.get("level"))
    return None if length is None else shelf(doc["bucket"][:length], doc.get("district"))


def client_key(doc: dict) -> tuple[str, str]:
    """The (user, client_id) pair that makes intake idempotent.

    A case stored without a client_id gets its own id in that place, so the pair is unique for
    every case and one plain unique index serves (no partial index needed on any engine). The
    prefix keeps the two kinds apart; a user who sends "case:<id>" as a client_id can only
    collide with their own cases.
    """
    return doc.get("created_by") or "", doc.get("client_id") or f"case:{doc['_id']}"


def project(doc: dict, fields) -> dict:
    """A copy of the parts of `doc` that the dotted paths in `fields` name, with MongoDB's rules
    for arrays of sub-documents."""
    tree: dict = {}
    for path in fields:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return _project(doc, tree)


def _project(value, tree: dict):
    if not tree:
        return copied(value)
    if isinstance(value, list):
        return [_project(item, tree) for item in value if isinstance(item, (dict, list))]
    if not isinstance(value, dict):
        return value
    return {key: _project(value[key], sub) for key, sub in tree.items() if key in value}


def last_history_only(doc: dict) -> dict:
    if "history" in doc:
        doc["history"] = doc["history"][-1:]
    return doc


CREATED, UPDATED = "case.created", "case.updated"


def case_event(kind: str, doc: dict, at) -> dict:
    """The log entry of one case change: its kind, which version it made, and the case as it
    then stood (without its history: the live feed shows state, not the trail)."""
    return {
        "key": f"{doc['_id']}:{doc['version']}", "type": kind, "case_id": doc["_id"],
        "version": doc["version"], "at": at,
        "case": {k: copied(v) for k, v in doc.items() if k != "history"},
    }
