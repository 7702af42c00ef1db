"""Pytest fixture: one real Milvus server (2.3.5 standalone, PyPI ``milvus``) per test session.

Import it from conftest.py: ``from tests.milvus_fixtures import milvus_server_uri``.

* ``MILVUS_SERVER_URI=http://host:port`` — use that server instead of starting one.
* Without the ``milvus`` package (part of the ``test`` extra) the tests that use the fixture
  fail: the server path is core, never silently skipped.
* Start takes ~2.5-4 s (plus ~4 s once per machine to unpack the binary into the cache dir, see
  tests/milvus_server.py); stop 0.1-2 s, at most ~5 s (then SIGKILL). Every port is picked free,
  so several sessions (or pytest-xdist workers, one server each) can run side by side; each
  server takes ~250 MB RSS idle.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from .milvus_server import MilvusServerError, MilvusServerProcess, free_port, milvus_package_version


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a Milvus server that lives for the whole test session."""
    external = os.environ.get("MILVUS_SERVER_URI")
    if external:
        yield external
        return
    if milvus_package_version() is None:
        pytest.fail("the 'milvus' package (pip install -e '.[test]') is needed for a Milvus server")
    server = MilvusServerProcess(
        tmp_path_factory.mktemp("milvus-server"),
        free_port(),
        # Strong-consistency reads wait for the next proxy time tick: 200 ms by default, ~30 ms
        # per Strong search/query with 20 (at some idle CPU). Tests use Strong a lot.
        extra_config={"proxy.timeTickInterval": 20},
    )
    try:
        server.start(timeout=180)
    except MilvusServerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server.uri
    finally:
        server.stop()
