"""Linux on s390x (``arch/s390``): the kernel class of :mod:`legacy.s390.pgtable`, its TLB
flushing (:mod:`legacy.s390.tlbflush`) and ptdump (:mod:`legacy.s390.ptdump`).

Not registered in :mod:`legacy.registry` yet.  What the generic code needed is in place
(``k.mm_root`` -> ``mm->context.asce``; ``k.arch_get_unmapped_area`` -> ``check_asce_limit``
in both APIs' ``mmap_region``; ``k.SOFTWARE_YOUNG_DIRTY`` for the hardware cross-checks; the
unified API's per-mm, per-folding levels with the indexing member's geometry), and
``tests/test_s390_harness.py`` runs sessions on it.  Still missing: splitting a 1M leaf (the
shared split uses ``pmd_pgprot``, which s390 lacks), kernel ``PAGE_KERNEL_ROX``/``_EXEC``
mappings (s390 has neither), and test code that assumes ``__pa(mm->pgd)`` roots or
flush-later invalidation.
"""
