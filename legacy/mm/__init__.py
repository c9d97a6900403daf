"""The kernel's page-table call sites (``mm/*.c``), written against a booted kernel ``k``.

Each module follows one kernel file and exports module-level functions taking the kernel
first: ``free_pgd_range(k, tlb, addr, end, floor, ceiling)``.  Their bodies read like the C
they port, line for line.

- :mod:`legacy.mm.mmu_gather`: ``include/asm-generic/tlb.h``, ``mm/mmu_gather.c``
- :mod:`legacy.mm.vma`: VMA bookkeeping on ``mm.mmap`` (``mm/vma.c``, ``mm/mmap.c``)
- :mod:`legacy.mm.memory`: ``mm/memory.c`` (free, zap, remap, copy)
- :mod:`legacy.mm.mmap`: ``exit_mmap``, ``mmput``, ``do_munmap``, ``dup_mmap``
- :mod:`legacy.mm.mremap`: ``mm/mremap.c`` (``move_page_tables``, ``move_vma``)
- :mod:`legacy.mm.vm_flags`, :mod:`legacy.mm.internal`: ``vm_flags`` bits, errno values and
  small shared helpers
- :mod:`legacy.mm.huge_memory`, :mod:`legacy.mm.mprotect`, :mod:`legacy.mm.vmalloc`,
  :mod:`legacy.mm.pagewalk`: huge leaves, protection changes, kernel mappings, walkers
"""
