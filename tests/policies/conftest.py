"""Shared fixtures for the policy tests; the builders live in act_helpers.py."""

from __future__ import annotations

import pytest

from policies.act import ACTPolicy
from tests.policies.act_helpers import tiny_policy


@pytest.fixture(scope="module")
def policy() -> ACTPolicy:
    """Shared, read-only (do not train or reconfigure it; reset() before relying on its queue)."""
    return tiny_policy()
