"""Shared fixtures: one freshly booted kernel per configuration, and the hypothesis profile.

``kernel`` is parametrized over :func:`legacy.arch_names` (ids = configuration names), so a
test taking it runs once per configuration with its own machine.  The hypothesis profile
"ci" (loaded by default) has no deadline, is not derandomized, and runs
``HYPOTHESIS_MAX_EXAMPLES`` examples (default 50).
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import legacy
from legacy.generic import GenericKernel

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=False,
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "50")),
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

ARCH_NAMES = legacy.arch_names()


@pytest.fixture(params=ARCH_NAMES, ids=ARCH_NAMES)
def kernel(request: pytest.FixtureRequest) -> GenericKernel:
    """A kernel booted on a fresh machine of each configuration."""
    name: str = request.param
    return legacy.boot(name)
