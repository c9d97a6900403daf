"""An independent MMU for ``ppc64-radix-4k`` / ``ppc64-radix-64k`` exports: Unicorn 2.1.4's
64-bit POWER CPU (QEMU TCG, the default model, POWER10), loaded with the exported bytes.

The export has no root register: it gives the process-table doublewords a CPU would fetch
(``prte_pidr`` for PIDR, ``prte_0`` for PID 0) and PIDR/LPIDR/LPCR (arches/ppc64/registers.py).
This harness builds what Linux builds around them (``radix_init_partition_table``,
``arch/powerpc/mm/book3s64/radix_pgtable.c``), in Unicorn's memory only, below the exported
frames: a 4 KiB partition table whose entry 0 (LPID 0) is ``PATB_HR | RTS | root | RPDS``
and points at a 4 KiB process table (PRTS = 0) holding the two entries.  Then, from a code
page run in real mode (MSR[IR] = MSR[DR] = 0), ``mtspr`` sets LPCR (HR, UPRT), PTCR, PID and
LPIDR = 0.  ``mtspr`` of those needs hypervisor state, which a register write cannot give
(QEMU's ``hreg_store_msr`` keeps MSR[HV] as it is): the harness sets MSR[HV] in a saved CPU
context and restores it -- the offset of MSR in the context is found by flipping MSR[DR]
and diffing two saved contexts.  LPIDR must stay 0 (any other value ends the process in
Unicorn 2.1.4), and selecting another CPU model is broken, so the default one is used.

Probes use ``uc_vmem_translate`` (the QEMU radix walk, ``ppc_radix64_xlate``, no access
made) with MSR[IR] = MSR[DR] = 1:

- pa = the read translation in hypervisor privileged state (MSR[PR] = 0), the address as
  is (quadrant 3 for kernel addresses, 0 for user ones);
- writable = the write translation succeeds; user = the read translation succeeds with
  MSR[PR] = 1 (problem state); executable = the fetch translation succeeds, in problem
  state for a user page, in privileged state otherwise.

Nothing is executed at a probed address, so there is no harness span and no ambiguity.
"""

from __future__ import annotations

import ctypes
import struct
from typing import Any

from tests.independent_mmu import Probe, Unsupported, _merge, available

_uc: Any
_ppc: Any
_lib: Any
try:  # optional dependency
    import unicorn as _uc
    import unicorn.unicorn_py3.unicorn as _ucmod
    from unicorn import ppc_const as _ppc

    _lib = _ucmod.uclib
    _lib.uc_vmem_translate.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_uint64)]
    _lib.uc_vmem_translate.restype = ctypes.c_int
except (ImportError, AttributeError):  # pragma: no cover - depends on the environment
    _uc = None
    _ppc = None
    _lib = None

MSR_SF, MSR_HV, MSR_PR, MSR_IR, MSR_DR = 1 << 63, 1 << 60, 1 << 14, 1 << 5, 1 << 4
PATB_HR = 1 << 63
SPR_PID, SPR_LPCR, SPR_LPIDR, SPR_PTCR = 48, 318, 319, 464
ISYNC = 0x4C00012C
PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
TABLES = 0x100000
"""Where the harness puts its partition table (+0), process table (+64K) and code (+128K):
below the exported frames, which start at 16 MiB."""


def mtspr(rs: int, spr: int) -> int:
    """``mtspr spr, rS`` (X-form, opcode 31/467: the SPR field holds spr[5:9] || spr[0:4])."""
    return 0x7C0003A6 | rs << 21 | (spr & 0x1F) << 16 | (spr >> 5) << 11


class UnicornPpc64RadixMmu:
    """Unicorn's POWER10 in radix mode with one ``ppc64-radix-*`` export."""

    harness_span = (0, 0)

    def __init__(self, machine: dict[str, Any], phys: bytes) -> None:
        why = available()
        if why is not None or _lib is None:
            raise Unsupported(why or "this unicorn has no uc_vmem_translate")
        self.arch = arch = machine["arch"]
        regs = machine["registers"]
        if int(regs["lpidr"]) != 0:
            raise Unsupported(f"{arch}: LPIDR {regs['lpidr']} (Unicorn only survives 0)")
        self.uc = uc = _uc.Uc(_uc.UC_ARCH_PPC, _uc.UC_MODE_PPC64 | _uc.UC_MODE_BIG_ENDIAN)
        g = int(machine["frame_size"])
        frames: list[int] = machine["frames"]
        if len(phys) != g * len(frames):
            raise ValueError("phys.bin does not match machine.json")
        ram = _merge((pa, pa + g) for pa in frames)
        if ram and ram[0][0] < TABLES + 0x30000:
            raise Unsupported(f"{arch}: exported frames overlap the harness tables")
        for lo, hi in ram:
            uc.mem_map(lo, hi - lo)
        for i, pa in enumerate(frames):
            uc.mem_write(pa, phys[i * g:(i + 1) * g])
        patb, prtb, code = TABLES, TABLES + 0x10000, TABLES + 0x20000
        uc.mem_map(TABLES, 0x30000)
        prte_0, prte_pid, pid = int(regs["prte_0"]), int(regs["prte_pidr"]), int(regs["pidr"])
        if not 0 < pid < 256:
            raise Unsupported(f"{arch}: PIDR {pid} does not fit a 4 KiB process table")
        uc.mem_write(patb, struct.pack(">QQ", PATB_HR | prte_0, prtb))
        uc.mem_write(prtb, struct.pack(">QQ", prte_0, 0))
        uc.mem_write(prtb + 16 * pid, struct.pack(">QQ", prte_pid, 0))
        prog = (mtspr(3, SPR_LPCR), mtspr(4, SPR_PTCR), mtspr(5, SPR_PID),
                mtspr(6, SPR_LPIDR), ISYNC)
        uc.mem_write(code, b"".join(struct.pack(">I", x) for x in prog))
        self._set_hv()
        for r, v in ((_ppc.UC_PPC_REG_3, int(regs["lpcr"])), (_ppc.UC_PPC_REG_4, patb),
                     (_ppc.UC_PPC_REG_5, pid), (_ppc.UC_PPC_REG_6, 0)):
            uc.reg_write(r, v)
        uc.emu_start(code, code + 4 * len(prog))
        self.msr = uc.reg_read(_ppc.UC_PPC_REG_MSR) | MSR_IR | MSR_DR
        if not self.msr & MSR_HV:
            raise Unsupported(f"{arch}: the emulated CPU left hypervisor state")

    def _set_hv(self) -> None:
        """MSR[HV] = 1 through a saved and restored context (see the module doc)."""
        uc = self.uc
        msr = uc.reg_read(_ppc.UC_PPC_REG_MSR)
        ctx = uc.context_save()
        raw = bytearray(bytes(ctx))
        uc.reg_write(_ppc.UC_PPC_REG_MSR, msr ^ MSR_DR)
        flipped = bytes(uc.context_save())
        uc.reg_write(_ppc.UC_PPC_REG_MSR, msr)
        diff = [i for i in range(len(raw)) if raw[i] != flipped[i]]
        off = next((i for i in diff if raw[i:i + 8] == msr.to_bytes(8, "little")), None)
        if off is None:
            raise Unsupported(f"{self.arch}: MSR not found in the saved CPU context")
        raw[off:off + 8] = (msr | MSR_HV | MSR_SF).to_bytes(8, "little")
        ctx.__setstate__((bytes(raw), ctx.size, ctx.arch, ctx.mode))
        uc.context_restore(ctx)

    def translate(self, va: int, prot: int, problem_state: bool) -> int | None:
        """``uc_vmem_translate`` of ``va`` for one access kind; None when it faults."""
        msr = self.msr | MSR_PR if problem_state else self.msr & ~MSR_PR
        self.uc.reg_write(_ppc.UC_PPC_REG_MSR, msr)
        pa = ctypes.c_uint64(0)
        err = _lib.uc_vmem_translate(self.uc._uch, va, prot, ctypes.byref(pa))
        return None if err else pa.value

    def probe(self, va: int) -> Probe:
        pa = self.translate(va, PROT_READ, False)
        if pa is None:
            return Probe(None, None, None, None, None)
        wpa = self.translate(va, PROT_WRITE, False)
        upa = self.translate(va, PROT_READ, True)
        user = upa is not None
        xpa = self.translate(va, PROT_EXEC, user)
        for other in (wpa, upa, xpa):
            if other is not None and other != pa:
                raise AssertionError(f"{va:#x}: accesses reach different PAs {pa:#x}, "
                                     f"{other:#x}")
        return Probe(pa, wpa is not None, xpa is not None, user)
