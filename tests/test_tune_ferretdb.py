"""`python -m dispatch.tools.tune_ferretdb`: what a FerretDB deployment runs once. Before it, a
read of one equality bucket (`qk`) is a sequential scan of the cases table; after it, with
FerretDB started on the parameters the tool names, PostgreSQL answers it from the GIN index.
Needs a FerretDB of its own on the shared PostgreSQL (DEVDB_FERRETDB, DEVDB_POSTGRESQL_URL)."""

from __future__ import annotations

import subprocess
import sys

from pymongo import AsyncMongoClient

from dispatch.store import buckets, open_store
from dispatch.store.query import CaseQuery
from dispatch.tools.tune_ferretdb import FERRETDB_URL_PARAMETERS
from engines import new_database_name
from support import ROOT
from test_durability import PrivateFerretDB
from test_store_contract import case


def plan_nodes(plan: dict) -> list[tuple[str, str]]:
    """(node type, index name) of every node of a PostgreSQL plan."""
    out = [(plan.get("Node Type", ""), plan.get("Index Name", ""))]
    for child in plan.get("Plans") or ():
        out += plan_nodes(child)
    return out


async def test_after_tuning_a_bucket_read_is_an_index_scan():
    ferret = PrivateFerretDB(url_parameters=FERRETDB_URL_PARAMETERS)
    await ferret.start()
    database = new_database_name()
    store = await open_store(ferret.uri, database)
    client = AsyncMongoClient(ferret.uri)
    try:
        docs = [case(n) for n in range(40)]
        await store.cases.bulk_insert(docs)
        key = buckets.query_keys(docs[0])[1]  # `all` in the month the cases were created

        async def plan() -> list[tuple[str, str]]:
            explained = await client[database].command({"explain": {"find": "cases", "filter": {"qk": key}}})
            return plan_nodes(explained["queryPlanner"]["Plan"])

        assert ("Seq Scan", "") in await plan()
        done = subprocess.run([sys.executable, "-m", "dispatch.tools.tune_ferretdb", "--postgresql-url",
                               ferret.postgresql, "--database", database],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert f"qk_gin\" ON \"{database}\"" in done.stdout and FERRETDB_URL_PARAMETERS in done.stdout
        tuned = await plan()
        assert any(node == "Bitmap Index Scan" and index.endswith("_qk_gin") for node, index in tuned), tuned
        assert not any(node == "Seq Scan" for node, _ in tuned)
        # Run again (after an upgrade): nothing to add, nothing breaks; the store reads as before.
        again = subprocess.run([sys.executable, "-m", "dispatch.tools.tune_ferretdb", "--postgresql-url",
                                ferret.postgresql, "--database", database], cwd=ROOT, capture_output=True, text=True)
        assert again.returncode == 0, again.stderr
        assert len(await store.cases.find(CaseQuery(limit=100))) == 40
    finally:
        await client.close()
        await store.drop()
        await store.close()
        ferret.stop()

