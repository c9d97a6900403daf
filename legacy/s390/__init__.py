"""Linux on s390x (``arch/s390``): the kernel class of :mod:`legacy.s390.pgtable`, its TLB
flushing (:mod:`legacy.s390.tlbflush`) and ptdump (:mod:`legacy.s390.ptdump`).

Staged (``arches.STAGED`` / ``legacy.registry.STAGED_KERNELS``), not registered yet.  What
the generic code needed is in place (``k.mm_root`` -> ``mm->context.asce``;
``k.arch_get_unmapped_area`` -> ``check_asce_limit`` in both APIs' ``mmap_region``;
``k.SOFTWARE_YOUNG_DIRTY`` and ``FLUSH_PENDING_PER_MM`` for the tests' expectations; the
unified API's per-mm, per-folding levels; ``Limits.kernel_prots``: no executable
``PAGE_KERNEL*``), and a 1M leaf splits through the ``pmd_pgprot`` extension of
:mod:`legacy.s390.thp`.
"""
