"""The hardware: one package per MMU family, and the registry of configurations.

``arches`` never imports ``legacy`` or ``unified``: its walkers are the independent oracle.
"""

from __future__ import annotations

from arches.arm64 import CONFIGS as _ARM64
from arches.config import ArchConfig, Fault, HwLevel, Translation
from arches.errors import UnknownArch
from arches.riscv import CONFIGS as _RISCV
from arches.x86 import CONFIGS as _X86

CONFIGS: dict[str, ArchConfig] = {**_X86, **_ARM64, **_RISCV}


def get_config(name: str) -> ArchConfig:
    """The configuration called ``name``; :class:`UnknownArch` names the known ones."""
    try:
        return CONFIGS[name]
    except KeyError:
        known = ", ".join(CONFIGS)
        raise UnknownArch(f"unknown architecture {name!r} (known: {known})") from None


__all__ = ["CONFIGS", "ArchConfig", "Fault", "HwLevel", "Translation", "get_config"]
