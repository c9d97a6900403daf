"""The command line shared by the generated documents (docs/arches.md, docs/legacy-api.md,
docs/fidelity.md): print the text, ``--write`` it, or ``--check`` that the file is fresh."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def generated_doc_main(argv: Sequence[str] | None, prog: str, doc: str | None, path: Path,
                       render: Callable[[], str]) -> int:
    """``python -m PROG [--write | --check]``: 0, or 1 when ``--check`` finds ``path``
    stale (naming the command that regenerates it)."""
    p = argparse.ArgumentParser(prog=f"python -m {prog}",
                                description=doc.split("\n")[0] if doc else None)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--write", action="store_true", help=f"rewrite {path}")
    g.add_argument("--check", action="store_true",
                   help=f"exit 1 if {path} is not what would be generated")
    args = p.parse_args(argv)
    text = render()
    if args.write:
        path.write_text(text, encoding="utf-8")
        return 0
    if args.check:
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            current = ""
        if current != text:
            print(f"{path} is stale: run python -m {prog} --write", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0
