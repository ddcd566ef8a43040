"""The case: its stored shape, and how it is shown to a given user (JSON and GeoJSON)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from dispatch.access.auth import User
from dispatch.clock import utcnow  # noqa: F401 - the domain's "now", re-exported
from dispatch.access.policy import may_see_caller, may_see_merged_caller
from dispatch.people import with_names
# Masking lives with the other access rules; re-exported here, where outputs are built.
from dispatch.access.masking import NOT_TEXT, case_secrets, caller_secrets, mask_name, mask_phone, mask_text, mask_with  # noqa: F401

from geo.city import LEVELS, SOURCES, TICKET_TYPES  # noqa: F401 - the city model's words, re-exported

OPEN_STATUSES = ("reported", "filed", "dispatched", "accepted", "handled", "checked", "suspended")
END_STATUSES = ("closed", "void", "merged")
STATUSES = OPEN_STATUSES + END_STATUSES

CHANNELS = ("12345", "12315", "12319", "12328", "12333", "12350", "12369", "web", "wechat")

# Fields kept on the stored document for queries and bookkeeping, never shown to clients.
_INTERNAL = ("_id", "scope_path", "next_due_at", "departments_seen", "caller_raw", "intake_digest",
             "search_masked")


def phone_digits(raw: str) -> str:
    """A phone number's digits as dialled inside China: separators, and a +86 / 0086 / 86
    country prefix in front of a full number, dropped (so every written form of one number is
    one string)."""
    digits = re.sub(r"\D", "", raw or "")
    if digits.startswith("0086") and len(digits) >= 9:  # the prefix only when a number follows it
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits


def scope_path(city_id: str, jurisdiction: dict | None) -> list[str]:
    """Every jurisdiction id the case lies in, city first: a scope filter is one equality."""
    path = [city_id]
    for level in LEVELS:
        node = (jurisdiction or {}).get(level)
        if node:
            path.append(node["id"])
    return path


def _render(value, tz: ZoneInfo, secrets: list[tuple[str, str]] | None):
    """One walk over a stored value: datetimes to ISO in the city's zone and, when `secrets` is
    given (the reader may not see the caller), free text masked; identifiers are left alone."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(tz).isoformat(timespec="seconds")
    if isinstance(value, str):
        return mask_with(value, secrets) if secrets is not None else value
    if isinstance(value, dict):
        return {k: _render(v, tz, None if k in NOT_TEXT else secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, tz, secrets) for v in value]
    return value


def to_api(case: dict, user: User | None, tz: ZoneInfo, actions: list[dict] | None = None,
           timer: dict | None = None, names: Callable[[str], str] | None = None) -> dict:
    """The case as `user` may see it; `actions` (`Workflow.actions`) is added as given, after
    masking: labels are the table's words, never the caller's. `timer` is the running stage
    clock as the pages count it down (`dispatch.workflow.stageclock.timer`). `names`
    (`PeopleNames.name`) puts the person's name (`by_name`) beside every `by` that has none."""
    out = {"id": case["_id"], **{k: v for k, v in case.items() if k not in _INTERNAL and k != "callers"},
           "timer": timer}
    if may_see_caller(user, case):
        out = _render(out, tz, None)
    else:
        caller = case.get("caller")
        # Free text too: an operator may have typed the caller's number into the description.
        out = _render(out, tz, case_secrets(case))
        if caller:
            out["caller"] = _masked_caller(caller)
    if case.get("callers"):
        # Each repeat's caller as its own call taker's: seen by them and admins, masked for others.
        out["callers"] = [_render(entry if may_see_merged_caller(user, entry) else {**entry, **_masked_caller(entry)}, tz, None)
                          for entry in case["callers"]]
    if names is not None:
        out = with_names(out, names)
    if actions is not None:
        out["actions"] = actions
    return out


def _masked_caller(caller: dict) -> dict:
    return {"name": mask_name(caller.get("name")), "phone": mask_phone(caller.get("phone"))}


FEATURE_PROPERTIES = (
    "number", "source", "channel", "type", "category", "status", "priority", "address",
    "assignment", "deadlines", "flags", "created_at", "updated_at", "version",
)


def to_feature(case: dict, user: User | None, tz: ZoneInfo, timer: dict | None = None) -> dict:
    """A case as a GeoJSON Feature (null geometry while it still needs a location).

    Its text is masked for every reader, admins included: the live feed serialises one feature
    for all subscribers, and the map has no use for a number.
    """
    props = {"id": case["_id"]}
    for key in FEATURE_PROPERTIES:
        if key in case:
            props[key] = case[key]
    jurisdiction = case.get("jurisdiction") or {}
    for level in LEVELS:
        node = jurisdiction.get(level)
        props[level] = node["name"] if node else None
    # Masked before it is cut: a number cut in half would no longer be recognised.
    secrets = case_secrets(case)
    props["summary"] = mask_with(case.get("description") or "", secrets)[:80]
    props["timer"] = timer
    return {
        "type": "Feature",
        "id": case["_id"],
        "geometry": case.get("location"),
        "properties": _render(props, tz, secrets),
    }


def masked_search_text(case: dict) -> str:
    """What `q=` may match for a reader who may not see the caller: the number, and the
    description and address as the mask shows them (stored as `search_masked`), so searching
    cannot recover a masked digit by trying prefixes."""
    caller = case.get("caller")
    parts = [case.get("number") or ""] + [mask_text(case.get(f) or "", caller) for f in ("description", "address")]
    return "\n".join(parts)
