"""``ptshim run … --export DIR``: the machine's page tables as the contract's export format.

``DIR/phys.bin`` is every allocated page-table frame, concatenated in ascending physical
order; ``DIR/machine.json`` says where each frame lives, which roots and register values a
CPU would use, and -- read back from ``phys.bin`` by the hardware walker, not from any
bookkeeping -- every leaf mapping.  See ``docs/cli.md`` (the export format).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from arches import get_config
from arches.errors import BadInput
from arches.memory import PhysMem
from ptshim.session import Session

FORMAT = "ptshim-export/1"


def rebuild_memory(frame_size: int, byteorder: str, phys_bits: int, frames: list[int],
                   data: bytes) -> PhysMem:
    """A fresh :class:`PhysMem` holding exactly the exported frames."""
    if len(data) != len(frames) * frame_size:
        raise BadInput(f"phys.bin holds {len(data)} bytes, {len(frames)} frames of "
                       f"{frame_size} expected")
    mem = PhysMem(frame_size, byteorder, phys_bits)
    for i, pa in enumerate(frames):
        mem.load_frame(pa, data[i * frame_size:(i + 1) * frame_size])
    return mem


def mappings_of(mem: PhysMem, arch: str, registers: dict[str, int]) -> list[dict[str, Any]]:
    """One row per leaf entry, VA order, as the configuration's walker reads ``mem``."""
    walker = get_config(arch).walker
    return [
        {"va": t.va, "pa": t.pa, "size": t.size, "prot": t.prot, "user": t.user}
        for t in walker.leaves(mem, registers)
    ]


def export(session: Session, outdir: str | Path) -> dict[str, Any]:
    """Write ``phys.bin`` and ``machine.json`` for the session's machine; return the JSON."""
    k = session.k
    out = Path(outdir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"{out}: cannot create the export directory: {e.strerror}") from None
    image = list(k.mem.image())
    frames = [pa for pa, _ in image]
    data = b"".join(b for _, b in image)
    user_root, kernel_root = session.roots()
    registers = session.registers()
    mem = rebuild_memory(k.mem.frame_size, k.mem.byteorder, k.mem.phys_bits, frames, data)
    machine: dict[str, Any] = {
        "format": FORMAT,
        "arch": session.config.name,
        "endianness": session.config.endianness,
        "frame_size": k.mem.frame_size,
        "roots": {"user": user_root, "kernel": kernel_root},
        "registers": registers,
        "frames": frames,
        "pgtables_bytes": session.mm.pgtables_bytes,
        "mappings": mappings_of(mem, session.config.name, registers),
    }
    try:
        (out / "phys.bin").write_bytes(data)
        (out / "machine.json").write_text(json.dumps(machine, indent=1) + "\n")
    except OSError as e:
        raise BadInput(f"{out}: cannot write the export: {e.strerror}") from None
    return machine


def load_export(outdir: str | Path) -> tuple[dict[str, Any], PhysMem]:
    """Read an export back: its ``machine.json`` and a :class:`PhysMem` from ``phys.bin``."""
    d = Path(outdir)
    try:
        machine = json.loads((d / "machine.json").read_text())
        data = (d / "phys.bin").read_bytes()
    except (OSError, json.JSONDecodeError) as e:
        raise BadInput(f"{d}: not a readable ptshim export: {e}") from None
    if machine.get("format") != FORMAT:
        raise BadInput(f"{d}: format {machine.get('format')!r} is not {FORMAT}")
    config = get_config(machine["arch"])
    mem = rebuild_memory(machine["frame_size"], machine["endianness"], config.phys_bits,
                         machine["frames"], data)
    return machine, mem
