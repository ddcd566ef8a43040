"""What the server engine stores as one BSON binary field instead of nested documents.

FerretDB 1.24 keeps a document as JSON with a type schema beside every value, and converts the
whole of it on each read and write, whatever the filter or projection asks for. Parts that the
store only ever reads and writes whole, never filters on, cost that conversion for nothing; packed
into one binary field they cross as bytes, decoded here. MongoDB gains little but loses nothing.

- A rollup bucket (`pack_bucket`): everything but its `_id` (and a day or month bucket's
  `shelf`). It is read and written by `_id` (a district's year bucket read in 118 ms, replaced in
  99 ms; packed, 16 and 12 ms), and a month's day buckets or a year's month buckets by `shelf`.
- A case's record lists (`pack_case`): its history, 督办, 提级, returns, callbacks and
  extensions — most of a swept case's values, and no query filters on them. A swept case read
  through the store on FerretDB costs 18–25 % less packed (docs/PERFORMANCE.md).
  A read that asks for some of them (`case_fields`) gets the packed field and has the projection
  applied here (`unpack_case`), with MongoDB's rules, so callers see what they would see from
  the server. Cases stored before are read as they are and packed at their next write.
"""

from __future__ import annotations

from datetime import timezone

import bson
from bson import Binary
from bson.codec_options import CodecOptions

from dispatch.store.records import BUCKET_SHELF, bucket_shelf, project

# As the client reads documents (MongoStore: tz_aware, UTC).
DOCUMENTS = CodecOptions(tz_aware=True, tzinfo=timezone.utc)

RECORD_LISTS = ("history", "supervisions", "escalations", "returns", "return_reviews", "callbacks", "extensions")
CASE_PACKED = "records"
BUCKET_PACKED = "packed"


def pack_bucket(doc: dict) -> dict:
    packed = {"_id": doc["_id"], BUCKET_PACKED: Binary(bson.encode({k: v for k, v in doc.items() if k != "_id"}))}
    shelf = bucket_shelf(doc)
    if shelf is not None:
        packed[BUCKET_SHELF] = shelf
    return packed


def unpack_bucket(doc: dict) -> dict:
    if BUCKET_PACKED not in doc:  # stored before buckets were packed: read as it is
        return {k: v for k, v in doc.items() if k != BUCKET_SHELF}
    return {"_id": doc["_id"], **bson.decode(doc[BUCKET_PACKED], codec_options=DOCUMENTS)}


def pack_case(doc: dict) -> dict:
    """A case as stored: its record lists moved into one binary field (none: no field)."""
    lists = {name: doc[name] for name in RECORD_LISTS if name in doc}
    if not lists:
        return dict(doc)
    stored = {key: value for key, value in doc.items() if key not in lists}
    stored[CASE_PACKED] = Binary(bson.encode(lists))
    return stored


def _packed_paths(fields) -> list[str]:
    return [f for f in fields if f.split(".", 1)[0] in RECORD_LISTS]


def case_fields(fields) -> dict:
    """The projection to send for `fields` (dotted paths, MongoDB's inclusion projection): a
    path into a record list asks for the packed field too (a case stored unpacked answers the
    path itself)."""
    projection = {field: 1 for field in fields}
    if _packed_paths(fields):
        projection[CASE_PACKED] = 1
    return projection


# A read that leaves the record lists out (and of an unpacked case, its history).
WITHOUT_RECORDS = {CASE_PACKED: 0, "history": 0}


def unpack_case(doc: dict, fields=None) -> dict:
    """`doc` as read, its record lists back in place (in place); with `fields`, only the parts
    of them those paths name, as the server would have projected them."""
    packed = doc.pop(CASE_PACKED, None)
    if packed is not None:
        lists = bson.decode(packed, codec_options=DOCUMENTS)
        if fields is not None:
            lists = project(lists, _packed_paths(fields))
        doc.update(lists)
    return doc
