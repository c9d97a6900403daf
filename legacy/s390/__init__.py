"""Linux on s390x (``arch/s390``): the kernel class of :mod:`legacy.s390.pgtable`, its TLB
flushing (:mod:`legacy.s390.tlbflush`) and ptdump (:mod:`legacy.s390.ptdump`).

Not registered in :mod:`legacy.registry` yet: the harness derives the MMU's root from
``mm->pgd`` (s390x's root is ``mm->context.asce``, whose type changes under a live mm), the
mmap path has no ``arch_get_unmapped_area`` hook to run ``check_asce_limit``, and the
hardware cross-checks expect writable, young pages to be valid and writable in the tables,
where s390x keeps clean pages DAT-protected and old pages invalid until the first fault.
"""
