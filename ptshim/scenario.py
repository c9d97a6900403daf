"""Scenarios: parsing (:func:`parse_scenario`, :func:`load_scenario`) and validation against one
booted configuration (:class:`Limits`, :func:`check_op`, :func:`validate`).

The format (docs/cli.md, "Scenarios")::

    {"ops": [OP, ...]}
    {"op": "map",     "va": INT, "pa": INT, "size": INT, "prot": PROT, "user": BOOL,
                      "page_size": INT}
    {"op": "unmap",   "va": INT, "size": INT}
    {"op": "protect", "va": INT, "size": INT, "prot": PROT}

Extensions (docs/cli.md): ``"anon": true`` on a user map (a private anonymous mapping,
populated; no ``pa``), ``{"op": "fork"}``, ``{"op": "mremap", "va", "size", "new_va"}``,
and ``"mm": N`` on every op (0 = the original process, 1.. = children in fork order).

Integers are JSON integers or ``"0x…"`` strings.  Every error is a :class:`BadInput` whose
message names the op by its index in ``ops`` (0-based) and its kind, then the field:
``op 3 (map): va 0x1234 is not a multiple of page_size 0x1000``.

Validation happens before the machine is touched: :func:`validate` checks every op of a
scenario against the configuration and against a simulated model, so a bad scenario fails
without any op having run.  Details and rationale: ``docs/cli.md``.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from arches.errors import BadInput
from legacy import GenericKernel
from legacy.generic import VM_READ, VM_SHARED, VM_WRITE
from ptshim.model import PROTS, Extent, Model, Prot, SplitSize

OpKind = Literal["map", "unmap", "protect", "fork", "mremap"]

_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # op: (required fields, optional fields); "comment" and "mm" are allowed everywhere.
    "map": (frozenset({"va", "size", "prot"}), frozenset({"pa", "user", "page_size", "anon"})),
    "unmap": (frozenset({"va", "size"}), frozenset()),
    "protect": (frozenset({"va", "size", "prot"}), frozenset()),
    "fork": (frozenset(), frozenset()),
    "mremap": (frozenset({"va", "size", "new_va"}), frozenset()),
}

@dataclass(frozen=True)
class MapOp:
    index: int
    va: int
    pa: int
    size: int
    prot: Prot
    user: bool | None
    """None when the scenario omits it: the range decides (true in the user range)."""
    page_size: int | None
    """None when the scenario omits it: the base page size."""
    kind: Literal["map"] = "map"
    anon: bool = False
    """A private anonymous mapping, populated (``pa`` is unused: 0)."""
    mm: int = 0

    @property
    def end(self) -> int:
        return self.va + self.size

@dataclass(frozen=True)
class UnmapOp:
    index: int
    va: int
    size: int
    kind: Literal["unmap"] = "unmap"
    mm: int = 0

    @property
    def end(self) -> int:
        return self.va + self.size

@dataclass(frozen=True)
class ProtectOp:
    index: int
    va: int
    size: int
    prot: Prot
    kind: Literal["protect"] = "protect"
    mm: int = 0

    @property
    def end(self) -> int:
        return self.va + self.size

@dataclass(frozen=True)
class ForkOp:
    """``fork()`` of process ``mm``: the child is the next process number."""

    index: int
    kind: Literal["fork"] = "fork"
    mm: int = 0

    # A fork has no address range: range-based tooling (the harness's coverage tags and
    # shrinker) sees an empty one at 0.
    @property
    def va(self) -> int:
        return 0

    @property
    def size(self) -> int:
        return 0

    @property
    def end(self) -> int:
        return 0


@dataclass(frozen=True)
class MremapOp:
    """``mremap(va, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, new_va)`` in process ``mm``."""

    index: int
    va: int
    size: int
    new_va: int
    kind: Literal["mremap"] = "mremap"
    mm: int = 0

    @property
    def end(self) -> int:
        return self.va + self.size


Op = MapOp | UnmapOp | ProtectOp | ForkOp | MremapOp
RangeOp = MapOp | UnmapOp | ProtectOp | MremapOp

@dataclass(frozen=True)
class Scenario:
    ops: tuple[Op, ...]
    name: str = "scenario"

    def to_json(self) -> dict[str, Any]:
        """The scenario in the contract's format (hex strings for addresses)."""
        return {"ops": [op_to_json(op) for op in self.ops]}

def op_to_json(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op.kind}
    if op.mm:
        out["mm"] = op.mm
    if isinstance(op, ForkOp):
        return out
    out["va"] = hex(op.va)
    if isinstance(op, MapOp):
        if op.anon:
            out["anon"] = True
        else:
            out["pa"] = hex(op.pa)
    out["size"] = hex(op.size)
    if isinstance(op, MremapOp):
        out["new_va"] = hex(op.new_va)
    if isinstance(op, MapOp | ProtectOp):
        out["prot"] = op.prot
    if isinstance(op, MapOp):
        if op.user is not None:
            out["user"] = op.user
        if op.page_size is not None:
            out["page_size"] = hex(op.page_size)
    return out

def op_label(op: Op) -> str:
    return f"op {op.index} ({op.kind})"

# -- parsing -----------------------------------------------------------------------------

_SHOW = 40
"""At most this many characters of a value (or name) from the input in a message."""


def _clip(text: str) -> str:
    return text if len(text) <= _SHOW else text[:_SHOW - 3] + "..."


def show_int(n: int) -> str:
    """An integer for a message: decimal when short, else hexadecimal, clipped (a ``"0x..."``
    string has no digit limit, and ``str()`` refuses ints over 4300 digits)."""
    return _clip(str(n) if n.bit_length() < 64 else hex(n))


def show_json(value: object) -> str:
    """A JSON value as (clipped) text: ``null``, ``true``, numbers as JSON writes them,
    strings between single quotes with JSON's escapes; an array or object as
    ``[...]``/``{...}`` (never Python's repr)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return show_int(value)
    if isinstance(value, float):
        return _clip(json.dumps(value))  # NaN/Infinity cannot come from a file: refused
    if isinstance(value, str):
        # JSON's escapes, between single quotes (the messages' convention for a string)
        return "'" + json.dumps(_clip(value))[1:-1].replace("'", "\\'") + "'"
    if isinstance(value, list):
        return "[...]" if value else "[]"
    if isinstance(value, dict):
        return "{...}" if value else "{}"
    return _clip(repr(value))  # not a JSON value (a caller's bug): still no traceback


def describe(value: object) -> str:
    """A JSON value named by its JSON type, to follow "not": ``null``, ``true``, ``false``,
    ``the number 1.5``, ``the string 'abc'``, ``an array``, ``an object``.  The one place
    messages name the type of a value from the input."""
    if value is None or isinstance(value, bool):
        return show_json(value)
    if isinstance(value, int | float):
        return f"the number {show_json(value)}"
    if isinstance(value, str):
        return f"the string {show_json(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return show_json(value)


def _names(keys: Sequence[object]) -> str:
    return ", ".join(k if isinstance(k, str) and k.isidentifier() and len(k) <= _SHOW
                     else show_json(k) for k in keys)


def _int(where: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        # JSON true/false are Python ints: refuse them
        raise BadInput(f"{where}: {name} must be an integer or a \"0x...\" string, not "
                       f"{describe(value)}")
    if isinstance(value, int):
        n = value
    else:
        text = value.strip()
        if not text.lower().startswith("0x"):
            raise BadInput(f"{where}: {name} {show_json(value)} is a string but not a "
                           f"\"0x...\" hexadecimal number")
        try:
            n = int(text[2:], 16)
        except ValueError:
            raise BadInput(f"{where}: {name} {show_json(value)} is not a hexadecimal number"
                           ) from None
    if n < 0:
        # An address (va, pa, new_va, size...) is printed in full, never clipped.
        shown = show_int(n) if name == "mm" or n.bit_length() < 64 else f"-{-n:#x}"
        raise BadInput(f"{where}: {name} {shown} is negative")
    return n

def _bool(where: str, name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise BadInput(f"{where}: {name} must be true or false, not {describe(value)}")
    return value

def _prot(where: str, value: object) -> Prot:
    for p in PROTS:
        if isinstance(value, str) and value == p:
            return p
    if isinstance(value, str):
        raise BadInput(f"{where}: prot {show_json(value)} is not one of {', '.join(PROTS)}")
    raise BadInput(f"{where}: prot must be one of {', '.join(PROTS)}, not {describe(value)}")

def parse_op(index: int, raw: object) -> Op:
    """One op from its JSON value; checks field names and types only."""
    where = f"op {index}"
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: an op must be a JSON object, not {describe(raw)}")
    if "op" not in raw:
        raise BadInput(f"{where}: missing field op (one of {', '.join(_FIELDS)})")
    kind = raw["op"]
    if not isinstance(kind, str) or kind not in _FIELDS:
        raise BadInput(f"{where}: \"op\" must be one of {', '.join(_FIELDS)}, not "
                       f"{describe(kind)}")
    where = f"op {index} ({kind})"
    required, optional = _FIELDS[kind]
    if kind == "map" and raw.get("anon") is not True:
        required = required | {"pa"}  # only an anonymous map has no pa
    missing = sorted(required - raw.keys())
    if missing:
        raise BadInput(f"{where}: missing field{'s' if len(missing) > 1 else ''} "
                       + _names(missing))
    unknown = sorted(raw.keys() - required - optional - {"op", "comment", "mm"})
    if unknown:
        raise BadInput(f"{where}: unknown field{'s' if len(unknown) > 1 else ''} "
                       + _names(unknown))
    mm = _int(where, "mm", raw.get("mm", 0))
    if kind == "fork":
        return ForkOp(index, mm=mm)
    va = _int(where, "va", raw["va"])
    size = _int(where, "size", raw["size"])
    if kind == "map":
        user = raw.get("user")  # null: as if omitted
        if user is not None:
            user = _bool(where, "user", user)
        anon = _bool(where, "anon", raw.get("anon", False))
        if anon and "pa" in raw:
            raise BadInput(f"{where}: pa is not allowed with anon (the kernel allocates the "
                           f"pages)")
        if not anon and "pa" not in raw:
            raise BadInput(f"{where}: missing field pa")
        ps = raw.get("page_size")
        return MapOp(
            index,
            va,
            0 if anon else _int(where, "pa", raw["pa"]),
            size,
            _prot(where, raw["prot"]),
            user,
            None if ps is None else _int(where, "page_size", ps),
            anon=anon,
            mm=mm,
        )
    if kind == "unmap":
        return UnmapOp(index, va, size, mm=mm)
    if kind == "mremap":
        return MremapOp(index, va, size, _int(where, "new_va", raw["new_va"]), mm=mm)
    return ProtectOp(index, va, size, _prot(where, raw["prot"]), mm=mm)

def parse_scenario(data: object, name: str = "scenario") -> Scenario:
    """A scenario from decoded JSON.  Top-level keys other than ``ops`` are ignored (room
    for ``description``, ``seed``...)."""
    if not isinstance(data, dict):
        raise BadInput(f"{name}: a scenario must be a JSON object with \"ops\", not "
                       f"{describe(data)}")
    if "ops" not in data:
        raise BadInput(f"{name}: \"ops\" must be a list of ops (a JSON array), and it is "
                       f"missing")
    ops = data["ops"]
    if not isinstance(ops, list):
        raise BadInput(f"{name}: \"ops\" must be a list of ops (a JSON array), not "
                       f"{describe(ops)}")
    return Scenario(tuple(parse_op(i, raw) for i, raw in enumerate(ops)), name)

def display_path(path: str | bytes | os.PathLike[str]) -> str:
    """A path as text that can always be printed: bytes that are not valid UTF-8 (kept as
    lone surrogates by the file-system encoding) are shown as ``\\xff``."""
    text = os.fsdecode(path)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _nonjson_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def decode_json(text: str, where: str) -> object:
    """``json.loads`` whose every failure is a :class:`BadInput` naming ``where``: syntax
    errors (with line and column), ``NaN``/``Infinity``, an integer literal over Python's
    digit limit (``sys.get_int_max_str_digits()``), nesting too deep to decode."""
    try:
        return json.loads(text, parse_constant=_nonjson_constant)
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: invalid JSON: {e.msg} (line {e.lineno}, column {e.colno})"
                       ) from None
    except RecursionError:
        raise BadInput(f"{where}: invalid JSON: arrays and objects nested too deep") from None
    except ValueError as e:
        reason = str(e)
        if "integer string conversion" in reason:
            reason = (f"an integer literal has more than {sys.get_int_max_str_digits()} "
                      f"digits (use a \"0x...\" string)")
        raise BadInput(f"{where}: invalid JSON: {reason}") from None


def load_scenario(path: str | bytes | os.PathLike[str]) -> Scenario:
    """Read and parse a scenario file; unreadable files and bad JSON are :class:`BadInput`
    naming the file."""
    shown = display_path(path)
    try:
        p = Path(os.fsdecode(path))
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"{shown}: cannot read scenario: not UTF-8 text (byte {e.start})"
                       ) from None
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise BadInput(f"{shown}: cannot read scenario: {reason}") from None
    data = decode_json(text, shown)
    try:
        return parse_scenario(data, display_path(p.stem))
    except BadInput as e:
        raise BadInput(f"{shown}: {e}") from None

def scenario_paths(path: str | bytes | os.PathLike[str]) -> list[Path]:
    """``path`` itself, or every ``*.json`` in it (sorted) when it is a directory."""
    shown = display_path(path)
    p = Path(os.fsdecode(path))
    try:
        if p.is_dir():
            found = sorted(p.glob("*.json"))
            if not found:
                raise BadInput(f"{shown}: directory holds no *.json scenario")
            return found
        if not p.exists():
            raise BadInput(f"{shown}: no such scenario file or directory")
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise BadInput(f"{shown}: cannot read scenario: {reason}") from None
    return [p]

# -- validation against a configuration ---------------------------------------------------

_LIMITS: dict[tuple[str, type], Limits] = {}
""":meth:`Limits.from_kernel`, by configuration name and kernel class."""


@dataclass(frozen=True)
class Limits:
    """What a booted kernel on one configuration accepts (derived from the config and the
    kernel's geometry)."""

    arch: str
    word_bits: int
    phys_bits: int
    page_size: int
    hw_leaf_sizes: tuple[int, ...]
    """Leaf sizes the hardware supports at some level (``ArchConfig.leaf_sizes``)."""
    user_range: tuple[int, int]
    kernel_range: tuple[int, int]
    user_leaf_sizes: tuple[int, ...]
    """Sizes a user map can use: PTEs, and PMD/PUD leaves when the kernel has transparent
    huge pages at that level (``insert_pfn_pmd``/``insert_pfn_pud``)."""
    kernel_leaf_sizes: tuple[int, ...]
    """Sizes a kernel map can use: PTEs, and PMD/PUD leaves with ``HAVE_ARCH_HUGE_VMAP``."""
    kernel_prots: tuple[Prot, ...] = PROTS
    """Protections a kernel map or protect can ask for: those with a ``PAGE_KERNEL*``
    pgprot that grants them (s390 has no ``PAGE_KERNEL_ROX``, and its ``PAGE_KERNEL_EXEC``
    is the generic fallback ``PAGE_KERNEL``, not executable on an NX machine)."""
    prot_none_lost_leaf: int = 0
    """The leaf size the kernel cannot keep PROT_NONE, else 0: ``PUD_SIZE`` where after
    ``pud_modify(leaf, PAGE_NONE)`` it is neither ``pud_leaf`` nor ``pud_present`` (riscv:
    ``_PAGE_PROT_NONE`` clears V), so zap/vunmap clear it as bad; ``PMD_SIZE`` where a
    PROT_NONE huge pmd, as ``set_pmd_at`` stores it, is not ``pmd_present`` (32-bit arm
    LPAE clears ``L_PMD_SECT_VALID``), so splitting it trips ``pmdp_invalidate``'s
    ``VM_WARN_ON_ONCE(!pmd_present(*pmdp))``."""
    prot_none_lost_why: str = ""
    """Why, for the error message."""
    special_lost_leaf: int = 0
    """``PMD_SIZE`` where ``pmd_modify`` drops ``pmd_special`` from a huge pfn pmd, else 0
    (ppc64 at v6.18: ``_HPAGE_CHG_MASK`` lacks ``_PAGE_SPECIAL``; a later kernel patch adds
    it): after an mprotect that changes a whole user huge pfn pmd, ``copy_huge_pmd`` takes
    it for a THP page and write-protects it, so a fork of that mm is refused."""
    first_user_address: int = 0
    """``FIRST_USER_ADDRESS`` (32-bit arm: two pages).  ``free_pgtables`` never frees the
    page table under it (its floor), so a user huge leaf whose slot starts below it is
    refused: once a base page was mapped there, ``insert_pfn_pmd`` would find the table
    and fail with -EBUSY."""

    @classmethod
    def from_kernel(cls, k: GenericKernel) -> Limits:
        """The limits of ``k``'s configuration, derived (:meth:`derive`) once per
        configuration and kernel class: every session and every generated scenario asks,
        and they depend on nothing else (class constants and methods)."""
        key = (k.config.name, type(k))
        lim = _LIMITS.get(key)
        if lim is None:
            lim = _LIMITS[key] = cls.derive(k)
        return lim

    @classmethod
    def derive(cls, k: GenericKernel) -> Limits:
        """User huge leaves need ``CONFIG_TRANSPARENT_HUGEPAGE`` (and
        ``HAVE_ARCH_TRANSPARENT_HUGEPAGE_PUD`` for puds), kernel ones ``HAVE_ARCH_HUGE_VMAP``
        and ``arch_vmap_p?d_supported(PAGE_KERNEL)``; and the hardware must allow a leaf of
        that size.  A folded pmd has its parent's size (i386: the 4M PDE is the pmd)."""
        c = k.config
        hw = c.leaf_sizes
        thp = k.has_transparent_hugepage()
        user = {k.PAGE_SIZE}
        if thp:
            user.add(k.PMD_SIZE)
            if k.has_transparent_pud_hugepage():
                user.add(k.PUD_SIZE)
        lost, why = 0, ""
        # (only where the kernel can make a pud leaf at all: s390 has no pfn_pud)
        if k.PUD_SIZE != k.PMD_SIZE and k.PUD_SIZE in hw and (
                k.has_transparent_pud_hugepage() or k.HAVE_ARCH_HUGE_VMAP):
            leaf = k.pud_mkhuge(k.pfn_pud(k.PUD_SIZE >> k.PAGE_SHIFT, k.PAGE_KERNEL))
            none = k.pud_modify(leaf, k.PAGE_NONE)
            if k.pud_leaf(leaf) and not (k.pud_leaf(none) or k.pud_present(none)):
                lost = k.PUD_SIZE
                why = ("after pud_modify(PAGE_NONE) the leaf is neither pud_leaf nor "
                       "pud_present, so the kernel would clear it as a bad pud "
                       "(pud_none_or_clear_bad)")
        if not lost and thp and k.PMD_SIZE in hw and _prot_none_pmd_not_present(c.name):
            lost = k.PMD_SIZE
            why = ("a PROT_NONE huge pmd is stored not pmd_present (set_pmd_at), so "
                   "splitting it trips pmdp_invalidate's VM_WARN_ON_ONCE(!pmd_present)")
        special_lost = 0
        if thp and k.PMD_SIZE in hw:
            shared = k.vm_get_page_prot(VM_READ | VM_WRITE | VM_SHARED)
            pfn_leaf = k.pmd_mkspecial(k.pmd_mkhuge(k.pfn_pmd(k.PMD_SIZE >> k.PAGE_SHIFT,
                                                              shared)))
            if k.pmd_special(pfn_leaf) and not k.pmd_special(
                    k.pmd_modify(pfn_leaf, k.vm_get_page_prot(VM_READ))):
                special_lost = k.PMD_SIZE
        kernel = {k.PAGE_SIZE}
        if k.HAVE_ARCH_HUGE_VMAP:
            if k.arch_vmap_pmd_supported(k.PAGE_KERNEL):
                kernel.add(k.PMD_SIZE)
            if k.arch_vmap_pud_supported(k.PAGE_KERNEL):
                kernel.add(k.PUD_SIZE)
        # include/linux/pgtable.h: "#ifndef PAGE_KERNEL_EXEC / # define PAGE_KERNEL_EXEC
        # PAGE_KERNEL"; no generic PAGE_KERNEL_ROX at all.
        kprots = tuple(p for p in PROTS if not (
            (p == "rx" and getattr(k, "PAGE_KERNEL_ROX", None) is None)
            or (p == "rwx" and c.has_nx and k.PAGE_KERNEL_EXEC == k.PAGE_KERNEL)
            or (p == "none" and _kernel_none_is_one_way(k))))
        return cls(
            arch=c.name,
            word_bits=c.word_bits,
            # A pfn is an unsigned long: on i386-pae that, not the 52-bit mask, limits pa.
            phys_bits=min(c.phys_bits, c.word_bits + c.page_shift),
            page_size=c.page_size,
            hw_leaf_sizes=hw,
            user_range=c.user_range,
            # The kernel never maps the very last page: vmap_range_noflush() BUG_ONs on
            # addr >= end, and an end at the top of the address space wraps to 0.
            kernel_range=(c.kernel_range[0], min(c.kernel_range[1], c.addr_mask + 1 - c.page_size)),
            user_leaf_sizes=tuple(sorted(s for s in user if s in hw)),
            kernel_leaf_sizes=tuple(sorted(s for s in kernel if s in hw)),
            kernel_prots=kprots,
            prot_none_lost_leaf=lost,
            prot_none_lost_why=why,
            special_lost_leaf=special_lost,
            first_user_address=k.FIRST_USER_ADDRESS,
        )


@functools.cache
def _prot_none_pmd_not_present(arch: str) -> bool:
    """Whether a user PROT_NONE huge pmd, as ``set_pmd_at`` stores it, is ``pmd_trans_huge``
    but not ``pmd_present``: probed on a throwaway kernel of ``arch`` (a store into a frame
    no root reaches), so the caller's machine is untouched."""
    from legacy import boot
    from legacy.types import PmdPtr

    k = boot(arch)
    mm = k.mm_alloc()
    if mm is None:
        return False
    pa = k.mem.alloc_frame()
    va = -(-max(k.config.user_range[0], k.PMD_SIZE) // k.PMD_SIZE) * k.PMD_SIZE
    leaf = k.pmd_mkhuge(k.pfn_pmd(k.PMD_SIZE >> k.PAGE_SHIFT, k.PAGE_NONE))
    try:
        k.set_pmd_at(mm, va, PmdPtr(pa, k.SIZEOF_PMD), leaf)
    except Exception:  # an architecture that refuses the store outright: not this quirk
        return False
    v = k.pmdp_get(PmdPtr(pa, k.SIZEOF_PMD))
    return bool(k.pmd_trans_huge(v) and not k.pmd_present(v))


def _kernel_none_is_one_way(k: GenericKernel) -> bool:
    """Whether a kernel ``PAGE_NONE`` leaf cannot be turned back into a kernel mapping by
    ``set_memory_*`` (``pte_modify(pte, PAGE_KERNEL*)``), as the MMU decodes the result:
    where ``pte_modify`` keeps a bit of ``PAGE_NONE`` that matters (LoongArch: the PLV
    field, so the page opens to user mode; 32-bit arm LPAE: ``L_PTE_DIRTY`` clear and PXN,
    so it stays read-only and non-executable), a kernel PROT_NONE map is refused."""
    from arches.tlb import LEAF

    c = k.config
    root = k.mm_root(k.init_mm)
    kva = c.kernel_range[0]
    walks = list(c.walker.structure(c.make_registers(root, root)))
    walk = max((w for w in walks if w.va_base <= kva), key=lambda w: w.va_base,
               default=walks[0])
    last = len(walk.levels) - 1
    none = k.pfn_pte(0, k.PAGE_NONE)
    for name in ("PAGE_KERNEL_RO", "PAGE_KERNEL", "PAGE_KERNEL_ROX", "PAGE_KERNEL_EXEC"):
        prot = getattr(k, name, None)
        if prot is None:
            continue
        made = walk.decode(last, k.pte_modify(none, prot))
        want = walk.decode(last, k.pfn_pte(0, prot))
        if want.kind == LEAF and (made.kind != LEAF or made.perms != want.perms):
            return True
    return False


def _sizes(sizes: Sequence[int]) -> str:
    return ", ".join(f"{s:#x}" for s in sizes)

def _range(r: tuple[int, int]) -> str:
    return f"[{r[0]:#x}, {r[1]:#x})"

def space_of(where: str, va: int, size: int, lim: Limits) -> bool:
    """True for the user range, False for the kernel range; anything else is an error."""
    end = va + size
    top = 1 << lim.word_bits
    if va >= top or end > top:
        raise BadInput(
            f"{where}: range [{va:#x}, {end:#x}) goes beyond the {lim.word_bits}-bit "
            f"address space of {lim.arch}"
        )
    for user, r, name in ((True, lim.user_range, "user"), (False, lim.kernel_range, "kernel")):
        if r[0] <= va and end <= r[1]:
            return user
        if r[0] <= va < r[1] or r[0] < end <= r[1] or (va < r[0] and end > r[1]):
            raise BadInput(
                f"{where}: range [{va:#x}, {end:#x}) straddles the boundary of the {name} "
                f"range {_range(r)} of {lim.arch}"
            )
    raise BadInput(
        f"{where}: range [{va:#x}, {end:#x}) is neither in the user range "
        f"{_range(lim.user_range)} nor in the kernel range {_range(lim.kernel_range)} of "
        f"{lim.arch} (a hole or non-canonical)"
    )

def check_op(op: Op, lim: Limits, model: Model) -> bool:
    """Validate one op against the configuration and the current model; raise
    :class:`BadInput` naming the op and the field.  Returns whether the op is in the user
    range (True) or the kernel range (False)."""
    where = op_label(op)
    if op.mm >= model.mm_count:
        raise BadInput(f"{where}: mm {show_int(op.mm)} does not exist (processes: 0.."
                       f"{model.mm_count - 1}; fork creates the next one)")
    if isinstance(op, ForkOp):
        if model.mm_count >= model.MAX_MMS:
            raise BadInput(f"{where}: mm: at most {model.MAX_MMS} processes")
        pmd = lim.special_lost_leaf
        lost = [e for e in model.view(op.mm) if e.special_lost and e.page_size == pmd]
        if lost:
            raise BadInput(
                f"{where}: fork of mm {op.mm} is refused on {lim.arch}: its huge pfn pmd "
                f"[{lost[0].va:#x}, {lost[0].end:#x}) was mprotected, and pmd_modify drops "
                "pmd_special there (_HPAGE_CHG_MASK lacks _PAGE_SPECIAL at v6.18), so "
                "copy_huge_pmd would write-protect the pfn map like a THP page")
        return True
    page_size = lim.page_size
    if isinstance(op, MapOp) and op.page_size is not None:
        page_size = op.page_size
        if page_size not in lim.hw_leaf_sizes:
            raise BadInput(
                f"{where}: page_size {page_size:#x} is not a leaf size of {lim.arch} "
                f"(leaf sizes: {_sizes(lim.hw_leaf_sizes)})"
            )
    if op.size == 0:
        raise BadInput(f"{where}: size is 0")
    fields = [("va", op.va)] + ([("pa", op.pa)] if isinstance(op, MapOp) else [])
    for name, value in fields + [("size", op.size)]:
        if value % page_size:
            raise BadInput(
                f"{where}: {name} {value:#x} is not a multiple of page_size {page_size:#x}"
            )
    user = space_of(where, op.va, op.size, lim)
    if not user and op.mm:
        raise BadInput(f"{where}: mm {show_int(op.mm)} is given but the range is in the kernel "
                       f"range (init_mm is shared by every process: use mm 0 or omit it)")
    if isinstance(op, MremapOp):
        _check_mremap(op, lim, model, user)
        return user
    if isinstance(op, MapOp) and op.anon:
        if not user:
            raise BadInput(f"{where}: anon: an anonymous mapping must be in the user range")
        if page_size != lim.page_size:
            raise BadInput(f"{where}: page_size {page_size:#x}: anonymous mappings use base "
                           f"pages ({lim.page_size:#x}) only (no anonymous THP here)")
    if isinstance(op, (MapOp, ProtectOp)) and not user and op.prot not in lim.kernel_prots:
        raise BadInput(
            f"{where}: prot {op.prot} is refused in the kernel range of {lim.arch}: its "
            f"kernel has no PAGE_KERNEL* protection granting it (it has: "
            f"{', '.join(lim.kernel_prots)})"
        )
    if isinstance(op, MapOp):
        if op.user is not None and op.user != user:
            if op.user:
                raise BadInput(
                    f"{where}: user is true but va {op.va:#x} is in the kernel range "
                    f"{_range(lim.kernel_range)} (kernel mappings must have user false)"
                )
            raise BadInput(
                f"{where}: user is false but va {op.va:#x} is in the user range "
                f"{_range(lim.user_range)} (user-range mappings belong to the process)"
            )
        allowed = lim.user_leaf_sizes if user else lim.kernel_leaf_sizes
        if page_size not in allowed:
            raise BadInput(
                f"{where}: page_size {page_size:#x} is a hardware leaf size but the kernel "
                f"of {lim.arch} cannot map {'user' if user else 'kernel'} pages of that "
                f"size (it can: {_sizes(allowed)})"
            )
        if not user and op.prot == "none" and page_size != lim.page_size:
            raise BadInput(
                f"{where}: a kernel mapping with prot none must use base pages: the kernel's "
                f"huge vmap (pXd_set_huge) is never given PAGE_NONE (x86 would invert the "
                f"low PFN bits of the leaf, arm64 makes every block valid)"
            )
        if op.prot == "none" and page_size == lim.prot_none_lost_leaf:
            raise BadInput(_prot_none_lost(where, lim))
        if user and page_size != lim.page_size and op.va < lim.first_user_address:
            raise BadInput(
                f"{where}: a {page_size:#x} leaf at {op.va:#x} is refused on {lim.arch}: "
                f"its slot starts below FIRST_USER_ADDRESS ({lim.first_user_address:#x}), "
                f"whose page table free_pgtables never frees (insert_pfn_pmd/pud would "
                f"find it and fail with -EBUSY)"
            )
        last = op.pa + op.size - 1
        if last >> lim.phys_bits:
            shift = lim.page_size.bit_length() - 1
            raise BadInput(
                f"{where}: pa {op.pa:#x} + size {op.size:#x} needs pfn {last >> shift:#x}, "
                f"beyond the {lim.phys_bits}-bit physical address space (max pfn "
                f"{((1 << lim.phys_bits) - 1) >> shift:#x})"
            )
        hit = model.overlapping(op.va, op.end, op.mm)
        if hit:
            e = hit[0]
            raise BadInput(
                f"{where}: range [{op.va:#x}, {op.end:#x}) overlaps the existing mapping "
                f"[{e.va:#x}, {e.end:#x})"
            )
    elif isinstance(op, ProtectOp):
        hole = model.first_hole(op.va, op.end, op.mm)
        if hole is not None:
            raise BadInput(
                f"{where}: range [{op.va:#x}, {op.end:#x}) is not fully mapped: "
                f"[{hole[0]:#x}, {hole[1]:#x}) is not mapped (mprotect would fail with ENOMEM)"
            )
        big = lim.prot_none_lost_leaf
        if op.prot == "none" and big and any(
                -(-max(op.va, e.va) // big) * big + big <= min(op.end, e.end)
                for e in model.overlapping(op.va, op.end, op.mm) if e.page_size == big):
            raise BadInput(_prot_none_lost(where, lim))  # a whole leaf would become PROT_NONE
    return user

def _prot_none_lost(where: str, lim: Limits) -> str:
    return (f"{where}: prot none on a {lim.prot_none_lost_leaf:#x} leaf is refused on "
            f"{lim.arch}: {lim.prot_none_lost_why}")

def _check_mremap(op: MremapOp, lim: Limits, model: Model, user: bool) -> None:
    """``mremap_to``'s checks, as bad input: page-aligned ranges in the user range, the
    old one inside one vma, the new one free; no huge PUD leaf in the old range."""
    where = op_label(op)
    if not user:
        raise BadInput(f"{where}: va: mremap moves user mappings only")
    if op.new_va % lim.page_size:
        raise BadInput(f"{where}: new_va {op.new_va:#x} is not a multiple of page_size "
                       f"{lim.page_size:#x}")
    if not space_of(where, op.new_va, op.size, lim):
        raise BadInput(f"{where}: new_va: the destination must be in the user range")
    hole = model.first_hole(op.va, op.end, op.mm)
    if hole is not None:
        raise BadInput(f"{where}: range [{op.va:#x}, {op.end:#x}) is not fully mapped: "
                       f"[{hole[0]:#x}, {hole[1]:#x}) is not mapped (mremap: EFAULT)")
    old = model.overlapping(op.va, op.end, op.mm)
    if len({e.vma for e in old}) != 1:
        raise BadInput(f"{where}: range [{op.va:#x}, {op.end:#x}) spans more than one vma "
                       f"(mremap: EFAULT)")
    big = [e for e in old if e.page_size > lim.page_size and e.page_size != min(
        (s for s in lim.user_leaf_sizes if s > lim.page_size), default=0)]
    if big:
        raise BadInput(f"{where}: range [{op.va:#x}, {op.end:#x}) has huge PUD leaves: "
                       f"move_page_tables' get_old_pud() clears a huge pud as bad "
                       f"(pud_none_or_clear_bad) on x86 and arm64; refused")
    hit = model.overlapping(op.new_va, op.new_va + op.size, op.mm)
    if hit:
        raise BadInput(f"{where}: new_va range [{op.new_va:#x}, {op.new_va + op.size:#x}) "
                       f"overlaps the existing mapping [{hit[0].va:#x}, {hit[0].end:#x})")


def apply_to_model(op: Op, user: bool, lim: Limits, model: Model, split: SplitSize) -> None:
    """The model's side of a successful op (the machine's side is the backend's)."""
    if isinstance(op, ForkOp):
        model.fork(op.mm)
    elif isinstance(op, MapOp):
        ps = lim.page_size if op.page_size is None else op.page_size
        if op.anon:
            zero = "w" not in op.prot
            pa = 0 if zero else model.new_anon(op.size)
            model.add(Extent(op.va, op.size, pa, op.prot, user, ps, anon=True, zero=zero,
                             exclusive=not zero, vma=model.new_vma()), op.mm)
        else:
            model.add(Extent(op.va, op.size, op.pa, op.prot, user, ps,
                             vma=model.new_vma()), op.mm)
    elif isinstance(op, UnmapOp):
        model.remove(op.va, op.end, split, op.mm)
    elif isinstance(op, MremapOp):
        model.mremap(op.va, op.end, op.new_va, split, op.mm)
    else:
        model.protect(op.va, op.end, op.prot, split, op.mm, lim.special_lost_leaf)

def validate(
    scenario: Scenario,
    lim: Limits,
    split: SplitSize,
    model: Model | None = None,
) -> None:
    """Check every op in order against a copy of ``model`` (empty by default), applying each
    to the copy, so the whole scenario is known good before anything runs."""
    sim = Model() if model is None else model.copy()
    for op in scenario.ops:
        user = check_op(op, lim, sim)
        apply_to_model(op, user, lim, sim, split)
        leaves = mapped_leaves(sim)
        if leaves > MAX_LEAVES:
            raise BadInput(
                f"{op_label(op)}: the scenario would have {leaves:,} leaves mapped; ptshim's "
                f"limit is {MAX_LEAVES:,} (64 GiB of 4K pages, about 4 minutes and 130 MB of "
                "x86-64 PTE tables): use bigger pages or smaller ranges")


MAX_LEAVES = 1 << 24
"""The most leaves (pages and huge leaves, every process counted) a scenario may have
mapped at once.  Cost grows with leaves -- about 65,000 per second end to end on x86_64 --
and memory with the page tables they need (docs/cli.md)."""


def mapped_leaves(model: Model) -> int:
    """Leaves the model's extents take, in every process and the kernel: each extent's
    size over its page size (for a kernel extent an upper bound: vmap may use bigger)."""
    kernel = sum(e.size // e.page_size for e in model.view(0) if not e.user)
    return kernel + sum(e.size // e.page_size for mm in range(model.mm_count)
                        for e in model.view(mm) if e.user)

def load_json_scenario(data: Mapping[str, object] | str, name: str = "scenario") -> Scenario:
    """Convenience for tests and the harness: a scenario from a dict or a JSON string."""
    if isinstance(data, str):
        return parse_scenario(decode_json(data, name), name)
    return parse_scenario(data, name)
