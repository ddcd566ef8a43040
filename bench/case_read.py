"""What one case read costs through the store, by `_id`: `python bench/case_read.py URI DATABASE`.

Reads the open cases with the longest histories (after a sweep: warned, overdue, 督办, 提级)
one at a time through `store.cases.get`, a few rounds, and prints the median per read and the
stored size. Run it on two databases loaded the same way to compare how cases are stored
(docs/PERFORMANCE.md: record lists nested vs packed into one binary field).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import bson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dispatch.store import buckets, mongo  # noqa: E402
from dispatch.store.packing import CASE_PACKED  # noqa: E402
from dispatch.store import open_store  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("uri")
    parser.add_argument("database")
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    store = await open_store(args.uri, args.database)
    try:
        # The open cases, by the month buckets of their `open` facet (a scan of the collection
        # would outlast the socket timeout on FerretDB).
        chosen = []
        now = datetime.now(timezone.utc)
        months = [buckets.key("open", buckets.bucket(buckets.MONTH, m))
                  for m in buckets.months_between(now, now - timedelta(days=400))]
        for qk in months:
            for doc in await store.cases.cases.find({"qk": qk}).to_list(None):
                entries = len(doc["history"]) if "history" in doc else len(bson.decode(doc[CASE_PACKED])["history"])
                chosen.append((entries, len(bson.encode(doc)), doc["_id"]))
        chosen.sort(reverse=True)
        chosen = chosen[:args.cases]
        print(f"{len(chosen)} open cases, history {chosen[-1][0]}–{chosen[0][0]} entries, "
              f"stored {statistics.median(c[1] for c in chosen) / 1024:.1f} KB (median BSON)")
        packed = CASE_PACKED in await store.cases.cases.find_one({"_id": chosen[0][2]})
        print("record lists:", "packed (one binary field)" if packed else "nested documents")
        for round_ in range(args.rounds):
            started, read = time.perf_counter(), 0
            for qk in months:  # as a list reads a bucket: many cases a command
                read += len([mongo._out(doc) for doc in await store.cases.cases.find({"qk": qk}).to_list(None)])
            print(f"bucket reads, round {round_ + 1}: {read} open cases, "
                  f"{(time.perf_counter() - started) * 1000 / max(read, 1):.2f} ms a case")
        for round_ in range(args.rounds):
            times = []
            for _, _, case_id in chosen:
                started = time.perf_counter()
                await store.cases.get(case_id)
                times.append((time.perf_counter() - started) * 1000)
            print(f"round {round_ + 1}: median {statistics.median(times):.2f} ms, "
                  f"mean {statistics.fmean(times):.2f} ms a case")
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
