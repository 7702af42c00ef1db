"""The mind's tests run on Milvus Lite; the ``core`` fixture is in ``tests/agent/conftest.py``."""

from __future__ import annotations

import pytest


@pytest.fixture
def backend() -> str:
    """The mind does not depend on the Milvus backend: Lite is enough here."""
    return "lite"
