"""Where the store tests find PostgreSQL: ``make test`` starts one (scripts/test-services.sh)."""

from __future__ import annotations

import os

import pytest


def postgres_url() -> str:
    url = os.environ.get("TETHER_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("TETHER_TEST_POSTGRES_URL is not set: run the suite through `make test`")
        pytest.skip("no PostgreSQL: run through `make test` (scripts/test-services.sh starts one)")
    return url
