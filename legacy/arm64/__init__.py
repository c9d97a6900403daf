"""arm64: ``arch/arm64/include/asm/pgtable*.h``, ``pgalloc.h`` and ``arch/arm64/mm``."""

from legacy.arm64.pgtable import Arm64_4K_48Kernel, Arm64Kernel

__all__ = ["Arm64Kernel", "Arm64_4K_48Kernel"]
