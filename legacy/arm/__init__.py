"""32-bit arm kernels (under construction, staged).

``legacy.arm.pgtable_2level``: the classic MMU (``arm``: 2048 two-word pgd entries, PTE pages
holding Linux and hardware halves, ``cpu_v7_set_pte_ext``), with its ptdump in
``legacy.arm.ptdump_2level``.  The LPAE kernel lives in its own modules.
"""
