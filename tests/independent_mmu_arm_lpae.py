"""An independent MMU for ``arm-lpae`` exports: Unicorn's 32-bit Arm CPU (QEMU TCG, the
``cortex-a15`` model, which has LPAE), loaded with the exported bytes and registers.

Set up as :mod:`tests.independent_mmu` does for the other CPUs: the exported frames are
mapped at their physical addresses, TTBCR (EAE = 1, T0SZ, T1SZ), TTBR0/TTBR1 (64-bit,
``mcrr``), MAIR0/MAIR1 are the exported ``registers`` (written to both security banks:
QEMU's cortex-a15 has the Security Extensions), SCTLR.M = 1 with WXN/UWXN clear, and probes
run from a harness page hung under an empty entry of the TTBR1 (else TTBR0) tables, in
Unicorn's copy only.  Probes (ARM state, SVC mode = PL1):

- load = ``ldrb``, store = ``strb``, user = ``ldrbt`` (an unprivileged load) at PL1;
- executable = the fetch at the address does not abort: at PL0 (CPSR.M = USR) for a user
  page (XN), at PL1 otherwise (XN and PXN), as the walker defines it.

A load that translates ends in Unicorn's "unmapped memory" hook with the *physical* address
QEMU's walk produced; one that does not raises a Data Abort (QEMU's ``EXCP_DATA_ABORT`` 4,
``EXCP_PREFETCH_ABORT`` 3 for a fetch).  A translation into an exported frame reads memory
instead: :class:`~tests.independent_mmu.Ambiguous`.
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

D_VALID, D_TABLE, D_AF, D_AP2 = 1 << 0, 1 << 1, 1 << 10, 1 << 7
D_ADDR = ((1 << 40) - 1) & ~0xFFF
D_PXN_TABLE, D_XN_TABLE = 1 << 59, 1 << 60
SCTLR_M, SCTLR_WXN, SCTLR_UWXN = 1 << 0, 1 << 19, 1 << 20
CPSR_MODE, MODE_USR, MODE_SVC = 0x1F, 0x10, 0x13
# ldrb r1, [r0] / strb r1, [r0] / ldrbt r1, [r0], #0 / nop
ARM_LDRB, ARM_STRB, ARM_LDRBT = 0xE5D01000, 0xE5C01000, 0xE4F01000
ARM_NOP = 0xE1A00000


class UnicornArmLpaeMmu:
    """Unicorn's Cortex-A15 loaded with one ``arm-lpae`` export."""

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        g = int(machine["frame_size"])
        ttbcr = int(regs["ttbcr"])
        if not ttbcr >> 31:
            raise Unsupported(f"{arch}: TTBCR.EAE = 0 is not the Long-descriptor format")
        self.t0sz, self.t1sz = ttbcr & 7, ttbcr >> 16 & 7
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_ARM, _uc.UC_MODE_ARM)
        uc.ctl_set_cpu_model(_arm.UC_CPU_ARM_CORTEX_A15)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        self._ram = _merge((pa, pa + g) for pa in frames)
        for lo, hi in self._ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        self.roots = (int(regs["ttbr0"]) & ((1 << 40) - 1) & ~0x1F,
                      int(regs["ttbr1"]) & D_ADDR)
        busy = self._ram + [(r["pa"], r["pa"] + r["size"]) for r in machine["mappings"]]
        self.harness_span = self._install_harness(_merge(busy))
        for sec in (0, 1):
            self._cp(2, 0, 0, 2, ttbcr, sec=sec)
            self._cp(0, 2, 0, 0, int(regs["ttbr0"]), is64=1, sec=sec)
            self._cp(0, 2, 1, 0, int(regs["ttbr1"]), is64=1, sec=sec)
            self._cp(10, 2, 0, 0, int(regs["mair0"]), sec=sec)
            self._cp(10, 2, 0, 1, int(regs["mair1"]), sec=sec)
            sctlr = self._rd(1, 0, 0, 0, sec=sec)
            self._cp(1, 0, 0, 0, (sctlr | SCTLR_M) & ~(SCTLR_WXN | SCTLR_UWXN), sec=sec)
        got = (self._rd(2, 0, 0, 2), self._rd(0, 2, 0, 0, is64=1),
               self._rd(0, 2, 1, 0, is64=1), self._rd(1, 0, 0, 0) & SCTLR_M)
        want = (ttbcr, int(regs["ttbr0"]), int(regs["ttbr1"]), SCTLR_M)
        if got != want:
            raise Unsupported(f"{arch}: the emulated CPU refused the system registers: "
                              f"{tuple(map(hex, got))}, wanted {tuple(map(hex, want))}")
        self._events: list[tuple[str, int]] = []
        uc.hook_add(_uc.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(_uc.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)
        self._ctx = uc.context_save()
        ev = self._run(self.code_va, self.code_va + 12, self.code_va + 16, MODE_SVC)
        if ev:
            raise Unsupported(f"{arch}: the probe code does not run: {ev}")

    # -- registers and tables --------------------------------------------------------------

    def _cp(self, crn: int, crm: int, opc1: int, opc2: int, val: int, is64: int = 0,
            sec: int = 0) -> None:
        self.uc.reg_write(_arm.UC_ARM_REG_CP_REG, (15, is64, sec, crn, crm, opc1, opc2, val))

    def _rd(self, crn: int, crm: int, opc1: int, opc2: int, is64: int = 0,
            sec: int = 0) -> int:
        return int(self.uc.reg_read(_arm.UC_ARM_REG_CP_REG,
                                    (15, is64, sec, crn, crm, opc1, opc2)))

    def _read_entry(self, pa: int) -> int:
        return int(struct.unpack("<Q", self.uc.mem_read(pa, 8))[0])

    def _is_ram(self, pa: int) -> bool:
        return any(lo <= pa < hi for lo, hi in self._ram)

    def _free_entry(self, table: int, level: int, n: int, va: int
                    ) -> tuple[int, int, int] | None:
        """An empty entry reachable from ``table`` (a level-``level`` table of ``n``
        entries mapping ``va`` with entry 0) through tables without PXNTable/XNTable."""
        shift = 12 + 9 * (3 - level)
        tables: list[tuple[int, int]] = []
        for k in list(range(1, n)) + [0]:
            e = self._read_entry(table + 8 * k)
            if e == 0:
                return table + 8 * k, level, va | k << shift
            if level < 2 and e & 3 == 3 and not e & (D_PXN_TABLE | D_XN_TABLE):
                tables.append((k, e))
        for k, e in tables:
            child = e & D_ADDR
            if self._is_ram(child):
                hit = self._free_entry(child, level + 1, 512, va | k << shift)
                if hit is not None:
                    return hit
        return None

    def _install_harness(self, busy: list[tuple[int, int]]) -> tuple[int, int]:
        starts = []
        if self.t1sz:
            lv = 1 if self.t1sz <= 1 else 2
            n = 1 << (32 - self.t1sz - (12 + 9 * (3 - lv)))
            starts.append((self.roots[1], lv, n, (1 << 32) - (1 << (32 - self.t1sz))))
        lv0 = 1 if self.t0sz <= 1 else 2
        starts.append((self.roots[0], lv0, 1 << (32 - self.t0sz - (12 + 9 * (3 - lv0))), 0))
        for table, lv, n, base in starts:
            found = self._free_entry(table, lv, n, base)
            if found is not None:
                break
        else:
            raise Unsupported(f"{self.arch}: no empty entry to hang the probe code on")
        entry_pa, level, va = found
        tables = 3 - level
        need = (tables + 1) * 4096
        base_pa = 0x200000
        while any(base_pa < hi and lo < base_pa + need for lo, hi in busy):
            base_pa += 0x200000
        self.uc.mem_map(base_pa, need)
        self.code_pa = base_pa + tables * 4096
        cur = entry_pa
        for t in range(tables):
            self.uc.mem_write(cur, struct.pack("<Q", base_pa + t * 4096 | D_VALID | D_TABLE))
            cur = base_pa + t * 4096  # index 0 below: va has zero bits under the entry
        # a PL1-only, read-only page, XN = PXN = 0, AttrIndx 7 (WBWA)
        leaf = self.code_pa | D_VALID | D_TABLE | D_AF | D_AP2 | 3 << 8 | 7 << 2
        self.uc.mem_write(cur, struct.pack("<Q", leaf))
        self.uc.mem_write(self.code_pa, struct.pack("<4I", ARM_LDRB, ARM_STRB, ARM_LDRBT,
                                                    ARM_NOP))
        self.code_va = va
        return va, va + (1 << (12 + 9 * (3 - level)))

    # -- probing ---------------------------------------------------------------------------

    def _on_intr(self, uc: Any, intno: int, _ud: Any) -> None:
        self._events.append(("intr", intno))
        uc.emu_stop()

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     _ud: Any) -> bool:
        self._events.append(("pa", address))
        return False

    def _run(self, va: int, start: int, end: int, mode: int) -> list[tuple[str, int]]:
        uc = self.uc
        self._events = []
        uc.context_restore(self._ctx)
        uc.reg_write(_arm.UC_ARM_REG_R0, va)
        cpsr = uc.reg_read(_arm.UC_ARM_REG_CPSR)
        uc.reg_write(_arm.UC_ARM_REG_CPSR, cpsr & ~CPSR_MODE | mode)
        try:
            uc.emu_start(start, end)
        except _uc.UcError:
            pass  # the unmapped-memory stop; the hook has recorded it
        return self._events

    def _access(self, va: int, kind: str) -> tuple[int | None, int | None]:
        """(pa, None) when the access translates, (None, exception) when it faults.
        Kinds: r/w/u = ldrb/strb/ldrbt at PL1; x = fetch at PL1; x0 = fetch at PL0."""
        if kind in ("x", "x0"):  # ARM state: the fetch is of the word holding va
            va &= ~3
            ev = self._run(va, va, va + 4, MODE_USR if kind == "x0" else MODE_SVC)
        else:
            off = 4 * "rwu".index(kind)
            ev = self._run(va, self.code_va + off, self.code_va + off + 4, MODE_SVC)
        if not ev:
            raise Ambiguous(f"{va:#x}: the {kind} access hit mapped memory")
        what, n = ev[0]
        return (n, None) if what == "pa" else (None, n)

    def probe(self, va: int) -> Probe:
        lo, hi = self.harness_span
        if lo <= va < hi:
            raise ValueError(f"{va:#x} is inside the harness span [{lo:#x}, {hi:#x})")
        pa, exc = self._access(va, "r")
        if pa is None:
            return Probe(None, None, None, None, exc)
        wpa, _ = self._access(va, "w")
        upa, _ = self._access(va, "u")
        xpa, _ = self._access(va, "x0" if upa is not None else "x")
        for other, want in ((wpa, pa), (xpa, pa & ~3), (upa, pa)):
            if other is not None and other != want:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, upa is not None)


__all__ = ["UnicornArmLpaeMmu"]
