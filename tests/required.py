"""What the suite needs from the machine: skipped on a developer's machine without it,
a failure in CI (CI=true, set by .ci/run), where every test must run."""

from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(why: str) -> None:
    """Skip on a developer machine without the service or tool; fail in CI."""
    if IN_CI:
        pytest.fail(f"unavailable in CI, where it must run: {why}")
    pytest.skip(f"unavailable: {why}")
