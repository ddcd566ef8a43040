"""What a FerretDB 1.24 deployment needs from its PostgreSQL (docs/PERFORMANCE.md, "FerretDB 1.24:
what its PostgreSQL needs"), done once after the first server start and again after an upgrade:

    python -m dispatch.tools.tune_ferretdb --postgresql-url postgres://USER@HOST:PORT/PGDATABASE \\
                                           --database city

* GIN indexes on `_jsonb->'<field>'` for the fields the store filters by equality (every
  collection's `_id`; the cases' `qk` buckets, `due_keys`, `number`, `created_by`; the event
  log's `key` ...): FerretDB's own btree indexes cannot serve the `@>` it sends, so without them
  every read is a sequential scan. Then `ANALYZE`.
* It prints the parameters FerretDB's own `--postgresql-url` must carry, which no index can
  replace: `plan_cache_mode=force_custom_plan` (under a generic plan the field is a parameter
  and no expression index matches) and `enable_seqscan=off` (a FerretDB table's documents live
  in TOAST, so its heap looks tiny and the planner prefers a sequential scan that reads every
  document).

`--database` is the FerretDB database (`storage.database`), a schema in PostgreSQL. FerretDB
creates a collection's table on its first write: run this after the servers have started once
(it says which collections it found). This tool speaks SQL to PostgreSQL through `psql`; the
application itself speaks only the MongoDB protocol.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from dispatch.store.records import AUDIT_KINDS

# Fields FerretDB filters by equality, per collection (every other collection: `_id`). A filter
# on two fields is answered from the more selective one's index: an intake retry's look-up by
# (created_by, client_key) read every case of its user from `created_by` (506 ms for a user with
# 9,569 cases) until `client_key` had one (0.07 ms).

GIN_FIELDS = {"cases": ("_id", "qk", "slot", "due_keys", "number", "created_by", "client_key"), "events": ("_id", "key"),
              "limit_events": ("_id", "key"), "case_numbers": ("_id", "day"), "case_counts": ("_id", "day", "month", "hour"), "kpi_pending": ("_id", "hour"),
              "kpi_rollups": ("_id", "shelf"),
              "attachments": ("_id", "owner", "referenced"),
              **{kind: ("_id", "day", "hour", "case_id", "by") for kind in AUDIT_KINDS},
              "audit_days": ("_id", "kind")}
FERRETDB_URL_PARAMETERS = "plan_cache_mode=force_custom_plan&enable_seqscan=off"


def psql(url: str, sql: str) -> str:
    done = subprocess.run(["psql", "-At", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"psql: {done.stderr.strip()}")
    return done.stdout.strip()


def tables(url: str, database: str) -> dict[str, str]:
    """FerretDB's collections in `database` and their tables."""
    rows = psql(url, f"SELECT _jsonb->>'_id', _jsonb->>'table' FROM \"{database}\"._ferretdb_database_metadata")
    return dict(line.split("|", 1) for line in rows.splitlines() if line)


def tune(url: str, database: str, only: tuple[str, ...] | None = None) -> list[str]:
    """Create the GIN indexes (if absent) and analyse each table (of the collections `only`,
    if given); the statements run."""
    done = []
    for collection, table in sorted(tables(url, database).items()):
        if only is not None and collection not in only:
            continue
        for field in GIN_FIELDS.get(collection, ("_id",)):
            sql = (f'CREATE INDEX IF NOT EXISTS "{table}_{field}_gin" ON "{database}"."{table}" '
                   f"USING gin ((_jsonb->'{field}') jsonb_path_ops)")
            psql(url, sql)
            done.append(sql)
        sql = f'ANALYZE "{database}"."{table}"'
        psql(url, sql)
        done.append(sql)
    return done


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dispatch.tools.tune_ferretdb",
                                description="为 FerretDB 所用的 PostgreSQL 建 GIN 索引（部署 FerretDB 时执行一次）")
    p.add_argument("--postgresql-url", required=True, help="FerretDB 所连的 PostgreSQL，如 postgres://user@host:5432/ferretdb")
    p.add_argument("--database", required=True, help="FerretDB 中的数据库名（配置项 storage.database）")
    args = p.parse_args(argv)
    try:
        statements = tune(args.postgresql_url, args.database)
    except (RuntimeError, FileNotFoundError) as exc:
        print(f"失败: {exc}", file=sys.stderr)
        return 1
    for sql in statements:
        print(sql)
    print(f"\n已处理 {sum(s.startswith('ANALYZE') for s in statements)} 个集合。"
          f"FerretDB 的 --postgresql-url 还须带上参数: ?{FERRETDB_URL_PARAMETERS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
