"""The baselines' tests use tiny models: one torch thread each (tests/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    yield
