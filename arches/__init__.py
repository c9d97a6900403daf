"""The hardware: one package per MMU family, and the registry of configurations.

``arches`` never imports ``legacy`` or ``unified``: its walkers are the independent oracle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from arches.arm import CONFIGS as _ARM
from arches.arm.lpae import CONFIGS as _ARM_LPAE
from arches.arm64 import CONFIGS as _ARM64
from arches.config import ArchConfig, Fault, HwLevel, Translation
from arches.errors import UnknownArch
from arches.loongarch import CONFIGS as _LOONGARCH
from arches.ppc64 import CONFIGS as _PPC64
from arches.riscv import CONFIGS as _RISCV
from arches.s390 import CONFIGS as _S390
from arches.x86 import CONFIGS as _X86

STAGED: dict[str, ArchConfig] = {}
"""Configurations under construction: built, tested on their own, not yet offered.  A
process registers the ones its environment variable ``PTSHIM_STAGED`` names (comma-separated,
or ``all``), so a developer can run every suite on one before registering it."""


def staged_names(available: Mapping[str, object]) -> list[str]:
    """The staged configurations ``PTSHIM_STAGED`` asks for, among ``available``."""
    wanted = [w.strip() for w in os.environ.get("PTSHIM_STAGED", "").split(",") if w.strip()]
    if "all" in wanted:
        return list(available)
    return [w for w in wanted if w in available]


CONFIGS: dict[str, ArchConfig] = {
    **_X86,
    **_ARM64,
    **_RISCV,
    **_PPC64,
    **_LOONGARCH,
    **_ARM,
    **_ARM_LPAE,
    **_S390,
    **{n: STAGED[n] for n in staged_names(STAGED)},
}


def get_config(name: str) -> ArchConfig:
    """The configuration called ``name``; :class:`UnknownArch` names the known ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        known = ", ".join(CONFIGS)
        raise UnknownArch(f"unknown architecture {name!r} (known: {known})") from None


__all__ = [
    "CONFIGS",
    "STAGED",
    "ArchConfig",
    "Fault",
    "HwLevel",
    "Translation",
    "get_config",
    "staged_names",
]
