"""The independent MMU for 32-bit arm with the classic (Short-descriptor) format: Unicorn's
ARM CPU (QEMU 5.0 TCG) as a Cortex-A15, loaded with one ``arm`` export.

The CP15 registers are the exported ones, written with ``UC_ARM_REG_CP_REG``: TTBR0 (c2,
c0, 0), TTBR1 (c2, c0, 1), TTBCR (c2, c0, 2), DACR (c3, c0, 0) and SCTLR (c1, c0, 0) --
whose M (MMU on) and AFE (Access flag) must read back as exported, else the export is
:class:`~tests.independent_mmu.Unsupported`.  A probe executes ``ldrb r1, [r0]``,
``strb r1, [r0]`` or a branch to the address, in SVC mode (PL1) or User mode (PL0, the CPSR
mode field):

- the load in SVC mode must translate (a data abort, QEMU's ``EXCP_DATA_ABORT`` = 4, means
  it does not): it reports the physical address through Unicorn's unmapped-memory hook,
  as in :mod:`tests.independent_mmu`;
- user = the load in User mode translates too;
- writable / executable = the store / execution (a prefetch abort, ``EXCP_PREFETCH_ABORT``
  = 3, when not) in User mode for a user page, in SVC mode otherwise -- the rights of the
  level that owns the page, as the walker (:mod:`arches.arm.short`) reports them.  PXN
  (of the leaf, or PXNTable of its first-level descriptor) is thus exercised on kernel
  pages only; Linux sets PXNTable on every user page table.

The code runs from a harness section: a 1 MiB section descriptor (AP[2:0] = 011, domain 0,
executable at both levels) put into an empty first-level descriptor of Unicorn's copy of
the tables, pointing at 1 MiB of physical memory no frame and no mapping uses; its VA span
is :attr:`UnicornArmShortMmu.harness_span`.  QEMU's ARMv7 MMU with a Cortex-A15 implements
PXN, PXNTable, XN, the DACR and the AP[2:0] model of ``SCTLR.AFE = 0``; the probes found no
quirk to work around.
"""

from __future__ import annotations

import struct
from typing import Any

from tests.independent_mmu import Ambiguous, Probe, Unsupported, _merge, available

_uc: Any
_arm: Any
try:  # optional dependency
    import unicorn as _uc
    from unicorn import arm_const as _arm
except ImportError:  # pragma: no cover - depends on the environment
    _uc = None
    _arm = None

# CP15 registers as (coproc, is64, sec, CRn, CRm, opc1, opc2)
SCTLR = (15, 0, 0, 1, 0, 0, 0)
TTBR0 = (15, 0, 0, 2, 0, 0, 0)
TTBR1 = (15, 0, 0, 2, 0, 0, 1)
TTBCR = (15, 0, 0, 2, 0, 0, 2)
DACR = (15, 0, 0, 3, 0, 0, 0)
SCTLR_M = 1 << 0
SCTLR_AFE = 1 << 29
MODE_USR, MODE_SVC = 0x10, 0x13
EXCP_PREFETCH_ABORT, EXCP_DATA_ABORT = 3, 4

LDRB = struct.pack("<I", 0xE5D01000)  # ldrb r1, [r0]
STRB = struct.pack("<I", 0xE5C01000)  # strb r1, [r0]
SECTION = 1 << 20
HARNESS_SECTION = 2 | (3 << 10)
"""A section (bits[1:0] = 10), AP[1:0] = 11 with AP[2] = 0 (read/write at PL0 and PL1),
domain 0, XN = PXN = 0."""


class UnicornArmShortMmu:
    """One ``arm`` export in Unicorn's Cortex-A15 (see the module doc)."""

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        if int(regs["ttbcr"]) & (1 << 31):
            raise Unsupported(f"{arch}: TTBCR.EAE = 1, not the Short-descriptor format")
        self.n = int(regs["ttbcr"]) & 7
        self.root = int(regs["ttbr0"]) & (0xFFFFFFFF << (14 - self.n)) & 0xFFFFFFFF
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_ARM, _uc.UC_MODE_ARM)
        uc.ctl_set_cpu_model(_arm.UC_CPU_ARM_CORTEX_A15)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        g = int(machine["frame_size"])
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        self._ram = _merge((pa, pa + g) for pa in frames)
        for lo, hi in self._ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(_merge(busy))
        for reg, name in ((TTBCR, "ttbcr"), (TTBR0, "ttbr0"), (TTBR1, "ttbr1"),
                          (DACR, "dacr")):
            uc.reg_write(_arm.UC_ARM_REG_CP_REG, reg + (int(regs[name]),))
        uc.reg_write(_arm.UC_ARM_REG_CP_REG, SCTLR + (int(regs["sctlr"]),))
        got = tuple(uc.reg_read(_arm.UC_ARM_REG_CP_REG, r) for r in (TTBCR, TTBR0, TTBR1, DACR))
        want = tuple(int(regs[n]) for n in ("ttbcr", "ttbr0", "ttbr1", "dacr"))
        sctlr = uc.reg_read(_arm.UC_ARM_REG_CP_REG, SCTLR)
        mask = SCTLR_M | SCTLR_AFE
        if got != want or sctlr & mask != int(regs["sctlr"]) & mask:
            raise Unsupported(f"{arch}: the emulated CPU refused the CP15 registers: "
                              f"{tuple(map(hex, got))} SCTLR {sctlr:#x}, wanted "
                              f"{tuple(map(hex, want))} SCTLR {int(regs['sctlr']):#x}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        for mode in (MODE_SVC, MODE_USR):
            ev = self._run(self.code_va, self.code_va, mode)
            if ev:
                raise Unsupported(f"{arch}: the probe code does not run: {ev}")

    # -- the harness section ----------------------------------------------------------------

    def _read(self, pa: int) -> int:
        return int(struct.unpack("<I", self.uc.mem_read(pa, 4))[0])

    def _install_harness(self, busy: list[tuple[int, int]]) -> tuple[int, int]:
        entries = 4096 >> self.n
        for k in list(range(1, entries)) + [0]:
            if self._read(self.root + 4 * k) == 0:
                break
        else:
            raise Unsupported(f"{self.arch}: no empty first-level descriptor for the code")
        base = 0x0100_0000
        while any(base < hi and lo < base + SECTION for lo, hi in busy):
            base += SECTION
        self.uc.mem_map(base, SECTION)
        self.uc.mem_write(self.root + 4 * k, struct.pack("<I", base | HARNESS_SECTION))
        self.uc.mem_write(base, LDRB + STRB)
        self.code_va = k << 20
        return self.code_va, self.code_va + SECTION

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, mode: int) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        uc.context_restore(self._ctx)
        uc.reg_write(_arm.UC_ARM_REG_R0, va)
        cpsr = uc.reg_read(_arm.UC_ARM_REG_CPSR)
        uc.reg_write(_arm.UC_ARM_REG_CPSR, (cpsr & ~0x1F) | mode)
        try:
            uc.emu_start(start, start + 4)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str, mode: int) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, exception) when it aborts."""
        if kind == "x":  # an ARM-state fetch: word aligned (bit 0 would select Thumb)
            ev = self._run(va, va & ~3, mode)
        else:
            ev = self._run(va, self.code_va + (4 if kind == "w" else 0), mode)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, exc = self._access(va, "r", MODE_SVC)
        if pa is None:
            return Probe(None, None, None, None, exc)
        upa, _ = self._access(va, "r", MODE_USR)
        user = upa is not None
        mode = MODE_USR if user else MODE_SVC
        wpa, _ = self._access(va, "w", mode)
        xpa, _ = self._access(va, "x", mode)
        for other, want in ((upa, pa), (wpa, pa), (xpa, pa & ~3)):
            if other is not None and other != want:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, user)


__all__ = ["UnicornArmShortMmu"]
