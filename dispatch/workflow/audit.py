"""Append-only case history with a hash chain: each entry carries the hash of the one before."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

GENESIS = "0" * 64


def _canonical(entry: dict) -> bytes:
    def default(value):
        if isinstance(value, datetime):
            # Stores keep milliseconds in UTC; hash what survives the round trip.
            return value.astimezone(timezone.utc).isoformat(timespec="milliseconds")
        raise TypeError(f"unhashable history value {value!r}")

    body = {k: v for k, v in entry.items() if k != "hash"}
    return json.dumps(body, sort_keys=True, ensure_ascii=False, default=default).encode()


def entry_hash(prev_hash: str, entry: dict) -> str:
    return hashlib.sha256(prev_hash.encode() + _canonical(entry)).hexdigest()


def chain_entry(history: list[dict], entry: dict) -> dict:
    """Return `entry` with `prev` and `hash` set so that it extends `history`'s chain."""
    prev = history[-1]["hash"] if history else GENESIS
    entry = dict(entry, prev=prev)
    entry["hash"] = entry_hash(prev, entry)
    return entry


def verify_chain(history: list[dict]) -> int | None:
    """Index of the first entry whose hash does not follow from the ones before, or None."""
    prev = GENESIS
    for index, entry in enumerate(history):
        if entry.get("prev") != prev or entry.get("hash") != entry_hash(prev, entry):
            return index
        prev = entry["hash"]
    return None
