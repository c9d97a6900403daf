"""The s390x DAT walker (``arches/s390/walker.py``) on hand-built tables.

Every expectation is a rule of the z/Architecture Principles of Operation (SA22-7832), cited
by chapter and section title: chapter 3 "Dynamic Address Translation" ("Address-Space-Control
Element", "Translation Tables", "Translation Process") and chapter 6 "Program-Interruption
Conditions".  The Linux encodings of :mod:`arches.s390.bits` are used only where a test says
what the hardware makes of an entry Linux writes (``arch/s390/include/asm/pgtable.h``).
"""

from __future__ import annotations

import random
import struct

import pytest

from arches.config import Fault, Translation
from arches.errors import BadInput, PhysMemError
from arches.memory import PhysMem
from arches.s390 import KERNEL_START, S390X
from arches.s390 import bits as L
from arches.s390.registers import CR0_LINUX, S390Registers
from arches.s390.walker import PIC, S390Walker
from arches.tlb import PERM_U, Tlb, space_by_range

W = S390Walker(kernel_start=KERNEL_START)
R1, R2, R3, SEG = 0x0C, 0x08, 0x04, 0x00  # table types (DT / TT), PoP bits 60-61
I_REGION = 0x20  # region/segment invalid, PoP bit 58
P_BIT, IEP, FC = 0x200, 0x100, 0x400  # PoP bits 54, 55, 53
PTE_I = 0x400  # PoP bit 53
TL3 = 0x3
PRIVATE = 0x100  # ASCE private-space control, PoP bit 55
EDAT = 1 << 23  # CR0 bit 40
CR0_IEP = 1 << 20  # CR0 bit 43


def new_mem() -> PhysMem:
    return PhysMem(4096, "big", 64)


def crst(mem: PhysMem, empty: int) -> int:
    """A 16 KiB region/segment table: four contiguous frames, 16 KiB aligned, every entry
    ``empty`` (a fresh PhysMem hands out frames in ascending order)."""
    while True:
        base = mem.alloc_frame()
        if base % 16384 == 0:
            break
    for i in range(1, 4):
        assert mem.alloc_frame() == base + i * 4096
    for i in range(2048):
        mem.write(base + 8 * i, 8, empty)
    return base


def pt(mem: PhysMem) -> int:
    """A 2 KiB page table of invalid entries in its own frame (upper 2 KiB zero)."""
    base = mem.alloc_frame()
    for i in range(256):
        mem.write(base + 8 * i, 8, PTE_I)
    return base


def regs(user_asce: int, kernel_asce: int | None = None, cr0: int = EDAT | CR0_IEP
         ) -> dict[str, int]:
    k = kernel_asce if kernel_asce is not None else user_asce
    return {"cr0": cr0, "cr1": user_asce, "cr7": user_asce, "cr13": k}


class Tables:
    """A walk built top-down for one VA: ``levels`` tables from the designated one to a
    page table, every entry on the path valid, the page at ``frame``."""

    def __init__(self, mem: PhysMem, va: int, first: int, frame: int = 0x4000_0000,
                 asce_bits: int = 0) -> None:
        self.mem, self.va, self.first = mem, va, first
        types = (R1, R2, R3, SEG)
        self.tables: list[int] = []
        for t in range(first, 4):
            self.tables.append(crst(mem, types[t] | I_REGION))
        self.tables.append(pt(mem))
        shifts = (53, 42, 31, 20, 12)
        self.addrs: list[int] = []
        for i, t in enumerate(range(first, 5)):
            idx = va >> shifts[t] & (0x7FF if t < 4 else 0xFF)
            self.addrs.append(self.tables[i] + 8 * idx)
        for i, t in enumerate(range(first, 4)):
            nxt = self.tables[i + 1]
            mem.write(self.addrs[i], 8, nxt | (types[t] | TL3 if t < 3 else 0))
        mem.write(self.addrs[-1], 8, frame)
        self.asce = self.tables[0] | (types[first]) | TL3 | asce_bits

    def entry(self, t: int) -> int:
        """Address of the entry of table type ``t`` (0 = RFT .. 4 = PT) on the path."""
        return self.addrs[t - self.first]


def test_config_geometry() -> None:
    """PoP "Translation Tables": region and segment tables have up to 2048 entries, page
    tables 256 (with 4K pages); the VA splits RFX 0-10, RSX 11-21, RTX 22-32, SX 33-43,
    PX 44-51, BX 52-63 (MSB-0), i.e. shifts 53, 42, 31, 20, 12."""
    assert [(lv.shift, lv.entries, lv.table_bytes) for lv in S390X.hw_levels] == [
        (53, 2048, 16384), (42, 2048, 16384), (31, 2048, 16384), (20, 2048, 16384),
        (12, 256, 2048)]
    assert S390X.leaf_sizes == (4096, 1 << 20, 1 << 31)
    assert S390X.endianness == "big"
    assert L._CRST_TABLE_SIZE == 16384 and L._PAGE_TABLE_SIZE == 2048


@pytest.mark.parametrize("first", [0, 1, 2, 3])
def test_4k_page_every_designation_type(first: int) -> None:
    """PoP "Translation Process": the ASCE's DT selects the first table; each valid entry
    designates the next; the page-table entry's PFRA + BX is the real address."""
    mem = new_mem()
    va = 0x0000_0123_4567_8ABC & ((1 << (64 - 11 * first)) - 1 if first else (1 << 63) - 1)
    t = Tables(mem, va, first)
    got = W.translate(mem, regs(t.asce), va)
    assert isinstance(got, Translation), got
    assert (got.pa, got.size, got.level) == (0x4000_0000 | (va & 0xFFF), 4096, 4)
    assert got.writable and got.executable and got.user


def test_entries_are_big_endian() -> None:
    """Table entries are doublewords in storage, most significant byte first."""
    mem = new_mem()
    t = Tables(mem, 0x5000, 3)
    raw = mem.read_bytes(t.entry(4), 8)
    assert raw == struct.pack(">Q", 0x4000_0000)
    # Linux's empty PTE (_PAGE_INVALID) stored little-endian is, read big-endian, a valid
    # entry for another frame
    mem.write(t.entry(4), 8, int.from_bytes(struct.pack("<Q", L._PAGE_INVALID), "big"))
    got = W.translate(mem, regs(t.asce), 0x5000)
    assert isinstance(got, Translation) and got.pa == 0x0004_0000_0000_0000


@pytest.mark.parametrize("first,va,ok", [
    (1, (1 << 53) - 1, True), (1, 1 << 53, False),
    (2, (1 << 42) - 1, True), (2, 1 << 42, False),
    (3, (1 << 31) - 1, True), (3, 1 << 31, False),
])
def test_asce_type_exception(first: int, va: int, ok: bool) -> None:
    """PoP "Translation Process": with DT = region-second (third, segment) the RFX (RFX
    and RSX; RFX, RSX and RTX) must be zero, else an ASCE-type exception (PIC 0x0038),
    recognised before any table is fetched."""
    mem = new_mem()
    t = Tables(mem, va & ~0xFFF, first)
    got = W.translate(mem, regs(t.asce), va)
    if ok:
        assert isinstance(got, Translation)
    else:
        assert isinstance(got, Fault) and got.reason.startswith("ASCE-type exception")
        assert got.level is None


@pytest.mark.parametrize("t,name", [
    (0, "region-first-translation exception"),
    (1, "region-second-translation exception"),
    (2, "region-third-translation exception"),
    (3, "segment-translation exception"),
    (4, "page-translation exception"),
])
def test_invalid_bit_at_each_level(t: int, name: str) -> None:
    """PoP "Translation Process": I = 1 in a region-first (-second, -third), segment or page
    table entry is a region-first- (-second-, -third-) translation, segment-translation or
    page-translation exception (PIC 0x39, 0x3A, 0x3B, 0x10, 0x11)."""
    mem = new_mem()
    va = 0x0040_2000_0030_5000
    tab = Tables(mem, va, 0)
    e = tab.entry(t)
    mem.write(e, 8, mem.read(e, 8) | (PTE_I if t == 4 else I_REGION))
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith(name) and got.level == t
    assert name in PIC


@pytest.mark.parametrize("t", [0, 1, 2, 3])
def test_table_type_mismatch_is_translation_specification(t: int) -> None:
    """PoP "Translation Process": the TT of a region/segment-table entry must match the
    table it is fetched from (11 RFT, 10 RST, 01 RTT, 00 ST), else a
    translation-specification exception (PIC 0x12)."""
    mem = new_mem()
    va = 0x0040_2000_0030_5000
    tab = Tables(mem, va, 0)
    e = tab.entry(t)
    wrong = (mem.read(e, 8) & ~0x0C) | (0x04 if t != 2 else 0x08)
    mem.write(e, 8, wrong)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith("translation-specification")


def test_linux_empty_entries_are_invalid_not_zero() -> None:
    """What the hardware makes of Linux's empty entries (pgtable.h ``_REGION1_ENTRY_EMPTY``
    ... ``_PAGE_INVALID``): the I bit faults; an all-zero entry is *not* empty to DAT."""
    mem = new_mem()
    va = 0x7000
    tab = Tables(mem, va, 2)
    mem.write(tab.entry(4), 8, L._PAGE_INVALID)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith("page-translation")
    mem.write(tab.entry(4), 8, 0)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Translation) and got.pa == 0x7000 - 0x7000  # page frame 0
    mem.write(tab.entry(3), 8, L._SEGMENT_ENTRY_EMPTY)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith("segment-translation")
    mem.write(tab.entry(2), 8, L._REGION3_ENTRY_EMPTY)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith("region-third-translation")
    mem.write(tab.entry(2), 8, 0)  # zero in a region-third table: TT = 00, wrong type
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Fault) and got.reason.startswith("translation-specification")


def test_pte_bit_52_is_translation_specification() -> None:
    """PoP "Page-Table Entries": bit 52 must be zero, else a translation-specification
    exception.  (Linux uses 0x800 only as ``_PAGE_SWP_EXCLUSIVE`` in invalid swap PTEs.)"""
    mem = new_mem()
    tab = Tables(mem, 0x9000, 3)
    mem.write(tab.entry(4), 8, 0x4000_0000 | 0x800)
    got = W.translate(mem, regs(tab.asce), 0x9000)
    assert isinstance(got, Fault) and got.reason.startswith("translation-specification")
    mem.write(tab.entry(4), 8, 0x4000_0000 | L._PAGE_SW_BITS)  # bits 56-63 ignored
    assert isinstance(W.translate(mem, regs(tab.asce), 0x9000), Translation)


def test_asce_table_length() -> None:
    """PoP "Translation Process": bits 0-1 of the first index are compared with the ASCE's
    TL; greater is the translation exception of the designated table (here a region-third
    table with TL = 0: RTX 0-511 only)."""
    mem = new_mem()
    va_in, va_out = 511 << 31, 512 << 31
    tab = Tables(mem, va_in, 2)
    asce0 = tab.asce & ~TL3
    assert isinstance(W.translate(mem, regs(asce0), va_in), Translation)
    got = W.translate(mem, regs(asce0), va_out)
    assert isinstance(got, Fault) and got.reason.startswith("region-third-translation")


@pytest.mark.parametrize("tf,tl,quarter,ok", [
    (0, 3, 2, True), (1, 3, 0, False), (1, 3, 1, True), (0, 1, 2, False), (2, 2, 2, True),
])
def test_region_entry_offset_and_length(tf: int, tl: int, quarter: int, ok: bool) -> None:
    """PoP "Translation Process": bits 0-1 of the next index must be >= TF and <= TL of the
    region-table entry, else the next table's translation exception (here: the entry is
    a region-third-table entry, the next table a segment table)."""
    mem = new_mem()
    va = quarter << 29 | 0x3000
    tab = Tables(mem, va, 2)
    e = tab.entry(2)
    mem.write(e, 8, (mem.read(e, 8) & ~0xC3) | tf << 6 | tl)
    got = W.translate(mem, regs(tab.asce), va)
    if ok:
        assert isinstance(got, Translation)
    else:
        assert isinstance(got, Fault) and got.reason.startswith("segment-translation")
        assert got.level == 3


def test_edat1_segment_frames() -> None:
    """PoP "Segment-Table Entries" (EDAT-1): with CR0 bit 40 one, FC = 1 makes the entry a
    1 MiB segment frame, SFAA bits 0-43; with EDAT-1 off FC is not examined and the entry
    designates a page table."""
    mem = new_mem()
    va = 0x0123_4567
    tab = Tables(mem, va, 2)
    # bits 44-46 (0xe0000) are not part of the SFAA
    mem.write(tab.entry(3), 8, 0x8000_0000 | 0x80000 | FC | L._SEGMENT_ENTRY_WRITE
              | L._SEGMENT_ENTRY_READ)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Translation)
    assert (got.pa, got.size, got.level) == (0x8000_0000 | (va & 0xFFFFF), 1 << 20, 3)
    with pytest.raises(PhysMemError):  # FC ignored: 0x80000000 read as a page table
        W.translate(mem, regs(tab.asce, cr0=0), va)


def test_edat2_region_third_frames() -> None:
    """PoP "Region-Table Entries" (EDAT-2): a region-third-table entry with FC = 1 is a
    2 GiB region frame, RFAA bits 0-32; without EDAT (CR0 bit 40 zero) it designates a
    segment table."""
    mem = new_mem()
    va = 0x2_8765_4321
    tab = Tables(mem, va, 2)
    # bits 33-46 (0x7ffe0000) are not part of the RFAA: bit 33 set must not move the frame
    mem.write(tab.entry(2), 8, 0x1_0000_0000 | 0x4000_0000 | FC | R3 | L._REGION3_ENTRY_READ)
    got = W.translate(mem, regs(tab.asce), va)
    assert isinstance(got, Translation)
    assert (got.pa, got.size, got.level) == (0x1_0000_0000 | (va & 0x7FFF_FFFF), 1 << 31, 2)
    w2 = S390Walker(kernel_start=KERNEL_START, edat2=False)
    with pytest.raises(PhysMemError):
        w2.translate(mem, regs(tab.asce), va)


@pytest.mark.parametrize("t,edat,protected", [
    (4, True, True), (3, True, True), (3, False, True), (2, True, True), (2, False, False),
    (1, True, True), (0, True, True),
])
def test_dat_protection(t: int, edat: bool, protected: bool) -> None:
    """PoP "DAT Protection": P in the page-table entry or the segment-table entry makes the
    page read-only; P in a region-table entry does so only with EDAT-1."""
    mem = new_mem()
    va = 0x0040_2000_0030_5000
    tab = Tables(mem, va, 0)
    e = tab.entry(t)
    mem.write(e, 8, mem.read(e, 8) | P_BIT)
    got = W.translate(mem, regs(tab.asce, cr0=EDAT if edat else 0), va)
    assert isinstance(got, Translation) and got.writable is not protected


@pytest.mark.parametrize("where,cr0,executable", [
    ("pte", EDAT | CR0_IEP, False), ("pte", EDAT, True),
    ("ste-table", EDAT | CR0_IEP, True), ("ste-frame", EDAT | CR0_IEP, False),
    ("rtte-frame", EDAT | CR0_IEP, False),
])
def test_instruction_execution_protection(where: str, cr0: int, executable: bool) -> None:
    """PoP "Instruction-Execution Protection": with CR0 bit 43 one, IEP in the entry that
    maps the page (page-table entry, or a segment/region-third frame entry) forbids
    instruction fetches; IEP in an entry that designates a table is not examined."""
    mem = new_mem()
    va = 0x2_0010_5000
    tab = Tables(mem, va, 2)
    if where == "pte":
        mem.write(tab.entry(4), 8, 0x4000_0000 | IEP)
    elif where == "ste-table":
        mem.write(tab.entry(3), 8, mem.read(tab.entry(3), 8) | IEP)
    elif where == "ste-frame":
        mem.write(tab.entry(3), 8, 0x8000_0000 | FC | IEP)
    else:
        mem.write(tab.entry(2), 8, 0x8000_0000 | FC | IEP | R3)
    got = W.translate(mem, regs(tab.asce, cr0=cr0), va)
    assert isinstance(got, Translation) and got.executable is executable


@pytest.mark.parametrize("private,ok", [(True, False), (False, True)])
def test_common_segment_in_private_space(private: bool, ok: bool) -> None:
    """PoP "Segment-Table Lookup": CS = 1 in a segment-table entry of a space whose ASCE has
    the private-space control is a translation-specification exception."""
    mem = new_mem()
    tab = Tables(mem, 0x5000, 2, asce_bits=PRIVATE if private else 0)
    mem.write(tab.entry(3), 8, mem.read(tab.entry(3), 8) | 0x10)
    got = W.translate(mem, regs(tab.asce), 0x5000)
    assert isinstance(got, Translation) is ok


def test_kernel_window_uses_home_space() -> None:
    """The emulation's convention: VAs from 2^63 translate through CR13 (the kernel's home
    space), below through CR1, and only the CR1 space is user."""
    mem = new_mem()
    kva = KERNEL_START | 0x1234_5000
    user = Tables(mem, 0x1234_5000, 2, frame=0x4000_0000)
    kern = Tables(mem, kva, 0, frame=0x5000_0000)
    r = regs(user.asce, kern.asce)
    u = W.translate(mem, r, 0x1234_5000)
    k = W.translate(mem, r, kva)
    assert isinstance(u, Translation) and u.pa == 0x4000_0000 and u.user
    assert isinstance(k, Translation) and k.pa == 0x5000_0000 and not k.user
    # the kernel VA through the user ASCE would be an ASCE-type exception; the user VA
    # through the kernel ASCE a region-third-translation exception: each space only sees
    # its own window
    got = W.translate(mem, regs(user.asce, user.asce), kva)
    assert isinstance(got, Fault) and got.reason.startswith("ASCE-type")


def test_real_space_designation_refused() -> None:
    mem = new_mem()
    with pytest.raises(BadInput, match="real-space"):
        W.translate(mem, regs(0x20 | TL3), 0)


def test_make_registers() -> None:
    """CR1 = CR7 = the user ASCE, CR13 = the kernel ASCE (mmu_context.h); CR0 with EDAT and
    IEP (ctlreg.h); a bare table address is refused: the root is an ASCE."""
    user = 0x100_0000 | L._ASCE_TYPE_REGION3 | L._ASCE_TABLE_LENGTH | L._ASCE_USER_BITS
    kern = 0x200_0000 | L._ASCE_TYPE_REGION1 | L._ASCE_TABLE_LENGTH
    assert S390Registers()(user, kern) == {"cr0": CR0_LINUX, "cr1": user, "cr7": user,
                                          "cr13": kern}
    assert CR0_LINUX == EDAT | CR0_IEP
    with pytest.raises(BadInput, match="not a bare table address"):
        S390Registers()(0x100_0000, kern)


def _random_tables(
    rng: random.Random, mem: PhysMem, first: int, n: int,
) -> tuple[int, dict[int, tuple[int, int, bool]]]:
    """A random space: ``n`` leaves of random sizes under one ASCE; returns the ASCE and
    {va: (pa, size, writable)}."""
    types = (R1, R2, R3, SEG)
    shifts = (53, 42, 31, 20, 12)
    root = crst(mem, types[first] | I_REGION)
    want: dict[int, tuple[int, int, bool]] = {}
    top = 63 if first == 0 else shifts[first - 1]
    for _ in range(n):
        size_t = rng.choice([4, 4, 4, 3, 2])
        va = rng.randrange(0, 1 << top) >> shifts[size_t] << shifts[size_t]
        table, t = root, first
        ok = True
        while t < size_t:
            e = table + 8 * (va >> shifts[t] & 0x7FF)
            cur = mem.read(e, 8)
            if cur & I_REGION:
                nxt = crst(mem, types[t + 1] | I_REGION) if t + 1 < 4 else pt(mem)
                mem.write(e, 8, nxt | (types[t] | TL3 if t < 3 else 0))
                table = nxt
            elif t in (2, 3) and cur & FC:
                ok = False  # a frame already covers it
                break
            else:
                table = cur & (~0xFFF if t < 3 else ~0x7FF)
            t += 1
        if not ok:
            continue
        e = table + 8 * (va >> shifts[t] & (0x7FF if t < 4 else 0xFF))
        if not (mem.read(e, 8) & (I_REGION if t < 4 else PTE_I)):
            continue
        if t < 4 and any(v >= va and v < va + (1 << shifts[t]) for v in want):
            continue
        pa = rng.randrange(1 << 20, 1 << 40) >> shifts[t] << shifts[t]
        prot = rng.random() < 0.3
        mem.write(e, 8, pa | (P_BIT if prot else 0) | (FC | types[t] if t < 4 else 0))
        want[va] = (pa, 1 << shifts[t], not prot)
    return root | types[first] | TL3, want


@pytest.mark.parametrize("first", [0, 1, 2])
def test_leaves_agree_with_translate(first: int) -> None:
    """``leaves`` lists exactly the frames that translate, in VA order, and ``translate``
    of each leaf's first and last byte agrees."""
    rng = random.Random(first)
    mem = new_mem()
    asce, want = _random_tables(rng, mem, first, 60)
    r = regs(asce, asce)
    got = list(W.leaves(mem, r))
    assert [(t.va, t.pa, t.size, t.writable) for t in got] == [
        (va, *want[va]) for va in sorted(want)]
    for t in got:
        for va in (t.va, t.va + t.size - 1):
            x = W.translate(mem, r, va)
            assert isinstance(x, Translation) and x.pa == t.pa + (va - t.va)


def test_structure_decodes_like_the_walker() -> None:
    """The TLB's view (``structure``) reaches the same leaves as the walker, decoding
    16 KiB tables that span four frames and 2 KiB page tables."""
    rng = random.Random(7)
    mem = new_mem()
    asce, want = _random_tables(rng, mem, 1, 40)
    kasce, kwant = _random_tables(rng, mem, 0, 5)
    r = regs(asce, kasce)

    def read_table(pa: int, n: int) -> bytes:
        return b"".join(mem.read_bytes(a, min(n, 4096)) for a in range(pa, pa + n, 4096))

    tlb = Tlb(mem.read, read_table, "big", space_by_range(KERNEL_START), (1 << 64) - 1,
              break_before_make=True)
    walks = W.structure(r)
    assert [w.register for w in walks] == ["cr1", "cr13"]
    assert [s.name for s in walks[0].levels] == ["RST", "RTT", "ST", "PT"]
    assert [s.table_bytes for s in walks[0].levels] == [16384, 16384, 16384, 2048]
    tlb.activate(1, walks[:1])
    assert tlb.leaves(1) == sorted((va, pa, size) for va, (pa, size, _) in want.items())
    tlb.activate(2, walks)
    assert tlb.leaves(2) == sorted(
        [(va, pa, size) for va, (pa, size, _) in want.items()]
        + [(va, pa, size) for va, (pa, size, _) in kwant.items()])


def test_tlb_sees_an_invalidation_through_a_multi_frame_table() -> None:
    """A store into the third frame of a 16 KiB segment table reaches the TLB model as a
    segment-table entry: clearing a 1 MiB frame there (I = 1, Linux's
    ``_SEGMENT_ENTRY_EMPTY``) leaves a stale mark over exactly that MiB."""
    mem = new_mem()
    va = 1500 << 20  # SX 1500: entry 12000 bytes into the segment table, third frame
    tab = Tables(mem, va, 2)
    mem.write(tab.entry(3), 8, 0x8000_0000 | FC)
    tlb = Tlb(mem.read, lambda pa, n: b"".join(
        mem.read_bytes(a, min(n, 4096)) for a in range(pa, pa + n, 4096)),
        "big", space_by_range(KERNEL_START), (1 << 64) - 1, break_before_make=True)
    tlb.activate(1, W.structure(regs(tab.asce, tab.asce))[:1])
    assert tlb.leaves(1) == [(va, 0x8000_0000, 1 << 20)]
    assert (tab.entry(3) - tab.tables[1]) // 4096 == 2
    mem.observer = tlb
    mem.write(tab.entry(3), 8, L._SEGMENT_ENTRY_EMPTY)
    assert [(m.start, m.end, m.level, m.change) for m in tlb.marks] == [
        (va, va + (1 << 20), "ST", "cleared")]


def test_leaves_skip_entries_outside_the_table_offset() -> None:
    """An entry of the next table below the region entry's TF (or above its TL) is never
    reached by DAT (PoP "Translation Process"): ``leaves`` must not list it either."""
    mem = new_mem()
    inside, outside = 1 << 29 | 0x5000, 0x5000  # segment-table quarters 1 and 0
    tab = Tables(mem, inside, 2)
    other = Tables(mem, outside, 2)
    # put the second path's segment entry into the first path's segment table
    mem.write(tab.tables[1] + 8 * (outside >> 20 & 0x7FF), 8, mem.read(other.entry(3), 8))
    e = tab.entry(2)
    mem.write(e, 8, (mem.read(e, 8) & ~0xC0) | 1 << 6)  # TF = 1
    r = regs(tab.asce)
    assert isinstance(W.translate(mem, r, outside), Fault)
    assert [t.va for t in W.leaves(mem, r)] == [inside & ~0xFFF]


def test_structure_user_bit_by_space() -> None:
    """The TLB view grants PERM_U to the user space's entries only (s390x has no user bit
    in its entries: user and kernel are different address spaces)."""
    mem = new_mem()
    user = Tables(mem, 0x5000, 2)
    kern = Tables(mem, KERNEL_START | 0x5000, 0)
    ru, rk = W.structure(regs(user.asce, kern.asce))
    assert ru.decode(2, mem.read(user.entry(4), 8)).perms & PERM_U
    assert not rk.decode(4, mem.read(kern.entry(4), 8)).perms & PERM_U
    assert ru.decode(2, mem.read(user.entry(4), 8)).kind == "leaf"
