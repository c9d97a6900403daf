"""Which kernel class boots on which configuration."""

from __future__ import annotations

from collections.abc import Callable

from arches import CONFIGS, ArchConfig, get_config, staged_names
from legacy.arm.pgtable_2level import ArmKernel
from legacy.arm.pgtable_3level import ArmLpaeKernel
from legacy.arm64.pgtable import (
    Arm64_4K_39Kernel,
    Arm64_4K_48Kernel,
    Arm64_16K_36Kernel,
    Arm64_16K_47Kernel,
    Arm64_16K_48Kernel,
    Arm64_64K_42Kernel,
    Arm64_64K_48Kernel,
)
from legacy.generic import GenericKernel
from legacy.loongarch.pgtable import LoongarchKernel
from legacy.ppc64.pgtable import Ppc64Radix4KKernel, Ppc64Radix64KKernel
from legacy.riscv.pgtable import RiscvSv32Kernel, RiscvSv39Kernel, RiscvSv48Kernel, RiscvSv57Kernel
from legacy.s390.pgtable import S390Kernel
from legacy.x86.pgtable_32 import I386Kernel, I386PaeKernel
from legacy.x86.pgtable_64 import X86_64Kernel

KernelFactory = Callable[[ArchConfig], GenericKernel]

KERNELS: dict[str, KernelFactory] = {
    "x86_64": lambda c: X86_64Kernel(c, la57=False),
    "x86_64-la57": lambda c: X86_64Kernel(c, la57=True),
    "i386": I386Kernel,
    "i386-pae": I386PaeKernel,
    "arm64-4k-39": Arm64_4K_39Kernel,
    "arm64-4k-48": Arm64_4K_48Kernel,
    "arm64-16k-36": Arm64_16K_36Kernel,
    "arm64-16k-47": Arm64_16K_47Kernel,
    "arm64-16k-48": Arm64_16K_48Kernel,
    "arm64-64k-42": Arm64_64K_42Kernel,
    "arm64-64k-48": Arm64_64K_48Kernel,
    "riscv32-sv32": RiscvSv32Kernel,
    "riscv64-sv39": RiscvSv39Kernel,
    "riscv64-sv48": RiscvSv48Kernel,
    "riscv64-sv57": RiscvSv57Kernel,
    "ppc64-radix-4k": Ppc64Radix4KKernel,
    "ppc64-radix-64k": Ppc64Radix64KKernel,
    "loongarch64": LoongarchKernel,
    "arm": ArmKernel,
    "arm-lpae": ArmLpaeKernel,
    "s390x": S390Kernel,
}

STAGED_KERNELS: dict[str, KernelFactory] = {}
"""Kernels of the configurations under construction (``arches.STAGED``); registered in a
process whose ``PTSHIM_STAGED`` names them."""
KERNELS.update({n: STAGED_KERNELS[n] for n in staged_names(STAGED_KERNELS)})


def boot(name: str) -> GenericKernel:
    """Boot a fresh kernel on a fresh machine of configuration ``name``."""
    config = get_config(name)
    return KERNELS[name](config)


def arch_names() -> list[str]:
    """Configurations that have both hardware and a kernel, in registry order."""
    return [n for n in CONFIGS if n in KERNELS]
