"""The case: its stored shape, and how it is shown to a given user (JSON and GeoJSON)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from dispatch.access.auth import User

LEVELS = ("district", "street", "community", "grid")

OPEN_STATUSES = ("reported", "filed", "dispatched", "accepted", "handled", "checked", "suspended")
END_STATUSES = ("closed", "void", "merged")
STATUSES = OPEN_STATUSES + END_STATUSES

SOURCES = ("grid", "hotline")
CHANNELS = ("12345", "12315", "12319", "12328", "12333", "12350", "12369", "web", "wechat")
TICKET_TYPES = ("consultation", "help", "complaint", "report", "suggestion", "praise")

# Fields kept on the stored document for queries and bookkeeping, never shown to clients.
_INTERNAL = ("_id", "scope_path", "next_due_at", "departments_seen", "caller_raw")


def utcnow() -> datetime:
    """Now, truncated to milliseconds: what MongoDB keeps, so hashes survive the round trip."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def scope_path(city_id: str, jurisdiction: dict | None) -> list[str]:
    """Every jurisdiction id the case lies in, city first: a scope filter is one equality."""
    path = [city_id]
    for level in LEVELS:
        node = (jurisdiction or {}).get(level)
        if node:
            path.append(node["id"])
    return path


def mask_phone(phone: str | None) -> str | None:
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return digits[:1] + "*" * (len(digits) - 1)


def mask_name(name: str | None) -> str | None:
    if not name:
        return name
    return name[0] + "*" * max(1, len(name) - 1)


# Mainland mobile numbers typed into free text (a description, a note): 138****5678 as well.
_MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")
# Keys whose values are identifiers or hashes, never free text.
_NOT_TEXT = frozenset({"id", "_id", "number", "hash", "prev", "photos", "by", "action", "from", "to", "status",
                       "code", "reporters", "created_by", "client_id"})


def mask_text(text: str, caller: dict | None = None) -> str:
    """Free text with the caller's own name and phone, and any mobile number, masked."""
    return _mask_with(text, _caller_secrets(caller))


def _mask_with(text: str, secrets: list[tuple[str, str]]) -> str:
    for value, masked in secrets:
        if value in text:
            text = text.replace(value, masked)
    return _MOBILE.sub(r"\1****\2", text)


def _caller_secrets(caller: dict | None) -> list[tuple[str, str]]:
    out = []
    for key, mask in (("phone", mask_phone), ("name", mask_name)):
        value = (caller or {}).get(key)
        if isinstance(value, str) and len(value.strip()) >= 2:
            out.append((value.strip(), mask(value.strip())))
    return out


def may_see_caller(user: User | None, case: dict) -> bool:
    """Only the operator who took the call, and admins, see the caller unmasked."""
    if user is None:
        return False
    if user.role == "admin":
        return True
    return user.role == "operator" and case.get("created_by") == user.username


def _render(value, tz: ZoneInfo, secrets: list[tuple[str, str]] | None):
    """One walk over a stored value: datetimes to ISO in the city's zone and, when `secrets` is
    given (the reader may not see the caller), free text masked; identifiers are left alone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(tz).isoformat(timespec="seconds")
    if isinstance(value, str):
        return _mask_with(value, secrets) if secrets is not None else value
    if isinstance(value, dict):
        return {k: _render(v, tz, None if k in _NOT_TEXT else secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, tz, secrets) for v in value]
    return value


def to_api(case: dict, user: User | None, tz: ZoneInfo) -> dict:
    out = {"id": case["_id"], **{k: v for k, v in case.items() if k not in _INTERNAL}}
    if may_see_caller(user, case):
        return _render(out, tz, None)
    caller = case.get("caller")
    # Free text too: an operator may have typed the caller's number into the description.
    out = _render(out, tz, _caller_secrets(caller))
    if caller:
        out["caller"] = {"name": mask_name(caller.get("name")), "phone": mask_phone(caller.get("phone"))}
    return out


FEATURE_PROPERTIES = (
    "number", "source", "channel", "type", "category", "status", "priority", "address",
    "assignment", "deadlines", "flags", "created_at", "updated_at", "version",
)


def to_feature(case: dict, user: User | None, tz: ZoneInfo) -> dict:
    """A case as a GeoJSON Feature (null geometry while it still needs a location)."""
    props = {"id": case["_id"]}
    for key in FEATURE_PROPERTIES:
        if key in case:
            props[key] = case[key]
    jurisdiction = case.get("jurisdiction") or {}
    for level in LEVELS:
        node = jurisdiction.get(level)
        props[level] = node["name"] if node else None
    text = case.get("description") or ""
    props["summary"] = mask_text(text[:80], case.get("caller"))  # features go to every reader
    return {
        "type": "Feature",
        "id": case["_id"],
        "geometry": case.get("location"),
        "properties": _render(props, tz, None),
    }
