"""Which storage engine a test runs on.

`embedded` needs nothing. `server` is a MongoDB-protocol server named by MONGODB_URI (in CI:
FerretDB on PostgreSQL, started by scripts/devdb); each test gets a database of its own, dropped
afterwards. Without MONGODB_URI a server test is skipped on a developer's machine and fails
under CI, where the server must be there.
"""

from __future__ import annotations

import os
import uuid

import pytest

from dispatch.store import open_store

ENGINES = ("embedded", "server")
TEST_SECRET = "test-token-signing-secret-0123456789"


def server_uri() -> str:
    uri = os.environ.get("MONGODB_URI")
    if uri:
        return uri
    if os.environ.get("CI"):
        pytest.fail("MONGODB_URI is not set: CI must run the server-store tests (scripts/devdb start)")
    pytest.skip("needs a MongoDB-protocol server: run scripts/devdb start and set MONGODB_URI")


def new_database_name() -> str:
    return f"citydispatch_test_{uuid.uuid4().hex[:12]}"


def storage_overrides(engine: str) -> list[str]:
    """`--set` overrides that put a test server on `engine`."""
    if engine == "embedded":
        return []
    return [f"storage.uri={server_uri()}", f"storage.database={new_database_name()}",
            "auth.allow_demo_passwords=true", f"auth.secret={TEST_SECRET}"]


async def open_test_store(engine: str):
    """A fresh, empty store on `engine`; `await store.close_for_test()` removes it."""
    if engine == "embedded":
        store = await open_store("embedded", "test")
    else:
        store = await open_store(server_uri(), new_database_name())
    return with_cleanup(store)


def with_cleanup(store):
    async def close_for_test():
        if store.persistent:
            await store.drop()
        await store.close()

    store.close_for_test = close_for_test
    return store
