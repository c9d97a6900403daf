"""The x86 hardware walkers, one per paging mode (Intel SDM Vol. 3A chapter 4).

- :class:`Ia32eWalker`: 4-level and 5-level paging (§4.5), ``Ia32eWalker(levels=5, phys_bits=52)``
- :class:`PaeWalker`: PAE paging (§4.4)
- :class:`Paging32Walker`: 32-bit paging with optional 4-MByte pages (§4.3)

Each implements :class:`arches.config.HardwareWalker` and reads CR0, CR3, CR4 and IA32_EFER
(``'cr0'``, ``'cr3'``, ``'cr4'``, ``'efer'``) from the register mapping.
"""

from arches.x86.ia32e import Ia32eWalker
from arches.x86.pae import PaeWalker
from arches.x86.paging32 import Paging32Walker
from arches.x86.walkcore import PagingWalker

__all__ = ["Ia32eWalker", "PaeWalker", "Paging32Walker", "PagingWalker"]
