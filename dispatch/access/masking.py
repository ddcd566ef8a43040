"""Masking personal data: the caller's name and number, and any phone or ID-card number typed
into free text. One place, used by every output (case JSON, GeoJSON, the live feed).

Numbers are recognised by shape, not by context, so a citizen's number is masked wherever an
operator typed it and in whatever form. The shapes are chosen so that the platform's own
numbers — case numbers (20261122-000123), dates, times, amounts, jurisdiction ids under their
id keys — are left alone.
"""

from __future__ import annotations

import re

# Mainland mobile numbers, with an optional country prefix (+86, 0086, 86-, 86 …); the groups
# may be split by one dash or space: 139-1234-5678, 139 1234 5678, 139 1234-5678.
_MOBILE = re.compile(
    r"(?<![0-9])(?P<prefix>(?:\+86|0086|86)[- ]?)?"
    r"(?P<head>1[3-9][0-9])(?P<s1>[- ]?)(?P<mid>[0-9]{4})(?P<s2>[- ]?)(?P<tail>[0-9]{4})(?![0-9])"
)

# Landlines with an area code: 0571-87654321, 0571 8765 4321, (0571)87654321, （010）6512 3456.
# The area code is 010, 02x or 0xxx; local numbers are 7 or 8 digits and never start with 0 or 1,
# which keeps case numbers (…-000123) and dates out.
_LANDLINE = re.compile(
    r"(?<![0-9])(?P<area>[(（]0[1-9][0-9]{1,2}[)）] ?|0[1-9][0-9]{1,2}[- ]?)"
    r"(?P<local>[2-9][0-9]{2,3}[- ]?[0-9]{4})(?![0-9])"
)

# Resident ID cards: 18 characters (17 digits and a check digit that may be X), or the old 15 digits.
_ID_CARD = re.compile(r"(?<![0-9])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")

# Keys whose values are identifiers, codes or hashes, never free text: masking them would only
# corrupt them (a 15-digit grid id looks like an old ID-card number).
NOT_TEXT = frozenset({
    "id", "_id", "number", "hash", "prev", "photos", "by", "action", "from", "to", "status", "code",
    "reporters", "created_by", "source", "into", "department", "departments", "escalated_to", "level",
    "rule", "channel", "type", "priority", "kind",
})


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


def _mobile(match: re.Match) -> str:
    g = match.groupdict(default="")
    return f"{g['prefix']}{g['head']}{g['s1']}****{g['s2']}{g['tail']}"


def _landline(match: re.Match) -> str:
    local = match.group("local")
    return match.group("area") + "****" + local[-4:]


def _id_card(match: re.Match) -> str:
    number = match.group(1)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def caller_secrets(caller: dict | None) -> list[tuple[str, str]]:
    """(clear, masked) pairs for the caller's own name and number, computed once per case."""
    out = []
    for key, mask in (("phone", mask_phone), ("name", mask_name)):
        value = (caller or {}).get(key)
        if isinstance(value, str) and len(value.strip()) >= 2:
            out.append((value.strip(), mask(value.strip())))
    return out


def case_secrets(case: dict) -> list[tuple[str, str]]:
    """The secrets of every caller of a case: its own, and those of the repeats merged into it
    (`callers`, see `dispatch.workflow.transitions.merged_caller`)."""
    out = caller_secrets(case.get("caller"))
    for entry in case.get("callers") or []:
        out += caller_secrets(entry)
    return out


def mask_with(text: str, secrets: list[tuple[str, str]]) -> str:
    """`text` with the given secrets and every phone or ID-card number masked.

    ID cards first: an 18-digit number must not be half-masked as a phone number.
    """
    for value, masked in secrets:
        if value in text:
            text = text.replace(value, masked)
    text = _ID_CARD.sub(_id_card, text)
    text = _MOBILE.sub(_mobile, text)
    return _LANDLINE.sub(_landline, text)


def mask_text(text: str, caller: dict | None = None) -> str:
    """Free text with the caller's own name and number, and any phone or ID number, masked."""
    return mask_with(text, caller_secrets(caller))
