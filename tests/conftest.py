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


def pmd_hw_addrs(k: GenericKernel, va: int) -> list[int]:
    """``va`` and its counterpart in each other hardware entry that the Linux pmd entry
    mapping ``va`` is made of: ``[va]``, except where a pmd spans several entries of the
    hardware level above the last (classic arm: a 2M pgd entry is two 1M first-level
    descriptors, arch/arm/include/asm/pgtable-2level.h), each with walk-cache entries of its
    own that an invalidation by address drops only for its own address."""
    hw = 1 << k.config.hw_levels[-2].shift
    base = va & k.PMD_MASK
    return [va] + [a for a in range(base + va % hw, base + k.PMD_SIZE, hw) if a != va]


@pytest.fixture(params=ARCH_NAMES, ids=ARCH_NAMES)
def kernel(request: pytest.FixtureRequest) -> GenericKernel:
    """A kernel booted on a fresh machine of each configuration."""
    name: str = request.param
    return legacy.boot(name)
