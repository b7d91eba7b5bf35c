"""The one rule for a test whose service is missing: under ``CI=true`` (``.ci/run`` provides
every service) the test fails; elsewhere it is skipped, saying how to get the service."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(what: str, how: str) -> NoReturn:
    """Fail (CI) or skip (elsewhere) because ``what`` is missing; ``how`` says how to get it."""
    if in_ci():
        pytest.fail(f"CI=true but {what}: {how}")
    pytest.skip(f"{what} ({how})")
