"""An independent MMU for ``s390x`` exports: Unicorn 2.1.4's s390x CPU (QEMU TCG's
``mmu_translate``), loaded with the exported bytes and control registers.

As in ``tests/test_s390_unicorn.py``: the exported frames are mapped at their physical
addresses; a probe runs two instructions in the secondary-space mode (PSW DAT on,
address-space control 10), fetched through a one-page harness primary space (CR1) of our
own below the frames, with the operand translated through CR7 = the ASCE under test --
the exported user ASCE (``cr1``) for VAs below 2^63, the kernel ASCE (``cr13``) above (the
emulation's VA windows, :data:`arches.s390.KERNEL_START`):

- LOAD REAL ADDRESS (LRAG): the real address (condition code 0), or a translation
  exception (condition code 3);
- TEST PROTECTION (TPROT): condition code 0 = stores permitted, 1 = DAT protection.

Unicorn 2.1.4 applies neither EDAT-1 nor EDAT-2 (see the strict xfails in
``tests/test_s390_unicorn.py``), so the CPU runs with CR0 = 0 and, in Unicorn's copy only,
every valid segment-table entry with FC = 1 (a 1 MiB segment frame) is replaced by the
entry a machine without EDAT needs: a page table (harness memory below the frames) of 256
page-table entries mapping the frame's pages, the entry's DAT-protection bit P moved onto
them (PoP chapter 3: SFAA bits 0-43, FC 53, P 54, I 58).  So for large pages QEMU checks the
walk down to the segment entry and this harness's decoding of the frame fields (not the
project's walker).  Region-third frames (EDAT-2) are refused: Linux maps none here.

What cannot be asked: instruction-execution protection (QEMU fetches through the primary
space; no IEP without EDAT-era CR0 bits): :attr:`Probe.executable` is None, unchecked.
s390 has no user bit: ``user`` is the address space the probe went through.
"""

from __future__ import annotations

import struct
from typing import Any

from tests.independent_mmu import Probe, Unsupported, _merge, available

_uc: Any
_s: Any
try:  # optional dependency
    import unicorn as _uc
    from unicorn import s390x_const as _s
except ImportError:  # pragma: no cover - depends on the environment
    _uc = None
    _s = None

KERNEL_START = 1 << 63
CODE = 0x8000
HARNESS_ST, HARNESS_PT = 0x10000, 0x20000
EXPAND = 0x40000
"""Page tables replacing segment frames are carved from here up to the first frame."""
LRAG = bytes.fromhex("e31020000003")  # lrag %r1,0(%r2)
TPROT = bytes.fromhex("e50120000000")  # tprot 0(%r2),0
PSW_DAT, PSW_ASC_SECONDARY, PSW_EA, PSW_BA = 1 << 58, 2 << 46, 1 << 32, 1 << 31
# PoP bit masks (MSB-0 bit n = 1 << (63 - n))
I_BIT, P_BIT, FC_BIT, PTE_I = 1 << 5, 1 << 9, 1 << 10, 1 << 10
DT_MASK, TT_MASK, TL3 = 0x0C, 0x0C, 0x3
REGION_ORIGIN = ((1 << 64) - 1) & ~0xFFF
SFAA = ((1 << 64) - 1) & ~((1 << 20) - 1)


class S390Harness:
    """A Unicorn s390x CPU with this module's harness primary space (CR1, below the
    frames), probing with one instruction whose operand goes through CR7 (also the base of
    tests/test_s390_unicorn.py's probes on tables built in a PhysMem)."""

    uc: Any
    faults: list[int]

    def _harness(self, uc: Any, cr0: int) -> None:
        """Write the harness space into ``uc`` (mapped from 0), set CR0/CR1 and catch
        program interruptions."""
        st = b"".join(struct.pack(">Q", I_BIT) for _ in range(2048))
        uc.mem_write(HARNESS_ST, st)
        uc.mem_write(HARNESS_ST, struct.pack(">Q", HARNESS_PT))
        uc.mem_write(HARNESS_PT, b"".join(struct.pack(">Q", PTE_I) for _ in range(256)))
        uc.mem_write(HARNESS_PT + 8 * (CODE >> 12), struct.pack(">Q", CODE))
        uc.reg_write(_s.UC_S390X_REG_CR0, cr0)
        uc.reg_write(_s.UC_S390X_REG_CR1, HARNESS_ST | TL3)  # a segment-table ASCE
        self.uc = uc
        self.faults = []

        def on_interrupt(u: Any, intno: int, data: Any) -> None:
            self.faults.append(intno)
            u.emu_stop()

        uc.hook_add(_uc.UC_HOOK_INTR, on_interrupt)

    def _run(self, insn: bytes, asce: int, va: int) -> tuple[int, int]:
        """Run ``insn`` (LRAG or TPROT) on ``va`` under ``asce``: (condition code, R1)."""
        uc = self.uc
        uc.mem_write(CODE, insn)
        uc.reg_write(_s.UC_S390X_REG_CR7, asce)
        uc.ctl(_uc.UC_CTL_TLB_FLUSH, _uc.UC_CTL_IO_WRITE)
        uc.reg_write(_s.UC_S390X_REG_R1, 0xDEAD)
        uc.reg_write(_s.UC_S390X_REG_R2, va)
        uc.reg_write(_s.UC_S390X_REG_PSWM, PSW_DAT | PSW_ASC_SECONDARY | PSW_EA | PSW_BA)
        self.faults.clear()
        uc.emu_start(CODE, CODE + len(insn))
        if self.faults:
            raise AssertionError(f"program interruption probing {va:#x} under {asce:#x}")
        return uc.reg_read(_s.UC_S390X_REG_PSWM) >> 44 & 3, uc.reg_read(_s.UC_S390X_REG_R1)


class UnicornS390Mmu(S390Harness):
    """Unicorn's s390x CPU with one ``s390x`` export (see the module doc)."""

    harness_span = (0, 0)

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None:
            raise Unsupported(why)
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        self.user_asce, self.kernel_asce = int(regs["cr1"]), int(regs["cr13"])
        g = int(machine["frame_size"])
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_S390X, _uc.UC_MODE_BIG_ENDIAN)
        uc.ctl_set_tlb_mode(_uc.UC_TLB_CPU)
        ram = _merge((pa, pa + g) for pa in frames)
        if ram and ram[0][0] < EXPAND + 0x10000:
            raise Unsupported(f"{arch}: exported frames overlap the harness memory")
        self._limit = ram[0][0] if ram else 1 << 24
        self._next = EXPAND
        uc.mem_map(0, self._limit)  # lowcore, code, harness space, expansion tables
        for lo, hi in ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        self._mapped = _merge((lo, hi) for lo, hi in [(0, self._limit), *ram])
        self._harness(uc, 0)
        self.expanded = 0
        for asce in {self.user_asce, self.kernel_asce}:
            self._expand(asce & REGION_ORIGIN, 3 - ((asce & DT_MASK) >> 2))

    def _read(self, pa: int) -> int:
        return int.from_bytes(self.uc.mem_read(pa, 8), "big")

    def _expand(self, table: int, level: int) -> None:
        """Replace the segment frames reachable from the table at ``table`` (level 0 =
        region-first ... 3 = segment table), in Unicorn's copy."""
        for i in range(2048):
            e = self._read(table + 8 * i)
            if e & I_BIT:
                continue
            if level < 3:
                if level == 2 and e & FC_BIT:
                    raise Unsupported(f"{self.arch}: a region-third frame (EDAT-2)")
                self._expand(e & REGION_ORIGIN, level + 1)
            elif e & FC_BIT:
                pt = self._alloc(2048)
                frame, prot = e & SFAA, e & P_BIT
                self.uc.mem_write(pt, b"".join(
                    struct.pack(">Q", frame + (j << 12) | prot) for j in range(256)))
                self.uc.mem_write(table + 8 * i, struct.pack(">Q", pt | prot))
                self.expanded += 1

    def _alloc(self, size: int) -> int:
        pa, self._next = self._next, self._next + size
        if self._next > self._limit:
            raise Unsupported(f"{self.arch}: no harness memory left below the frames")
        return pa

    def _ensure_mapped(self, pa: int) -> None:
        """TPROT needs the real page to exist: map a target page outside the frames."""
        page = pa & ~0xFFF
        if any(lo <= page < hi for lo, hi in self._mapped):
            return
        self.uc.mem_map(page, 0x1000)
        self._mapped = _merge([*self._mapped, (page, page + 0x1000)])

    def probe(self, va: int) -> Probe:
        user = va < KERNEL_START
        asce = self.user_asce if user else self.kernel_asce
        cc, r1 = self._run(LRAG, asce, va)
        if cc != 0:
            if cc != 3 or not r1 & 0x80000000:
                raise AssertionError(f"LRAG {va:#x}: cc {cc}, r1 {r1:#x}")
            return Probe(None, None, None, None, fault=r1 & 0xFFFF)
        self._ensure_mapped(r1)
        cc = self._run(TPROT, asce, va)[0]
        if cc not in (0, 1):
            raise AssertionError(f"TPROT {va:#x}: cc {cc} after LRAG gave {r1:#x}")
        return Probe(r1, cc == 0, None, user)
