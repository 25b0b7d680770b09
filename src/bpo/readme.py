"""Tables in the README that are copies of files in ``figures/``, kept equal to them.

A table the README shows verbatim from a notebook's output sits between two markers::

    <!-- table: figures/claims_smol.md -->
    | claim | ... |
    <!-- /table -->

``python -m bpo.readme`` rewrites every such block from its file after a new run, and
``python -m bpo.readme --check`` (and the test suite) fails while a block and its file differ, so
the README cannot quote a table that the latest run no longer wrote. Numbers in the prose around
the tables are not covered: they are edited by hand, and each names the file it comes from.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bpo.paths import PROJECT_ROOT

_OPEN = re.compile(r"^<!-- table: (?P<file>\S+) -->$")
_CLOSE = "<!-- /table -->"


@dataclass(frozen=True)
class Block:
    """One marked table: the file it copies and the README lines between its markers."""

    file: str
    line: int  # 1-based line of the opening marker
    body: str


def blocks(text: str, where: str = "README.md") -> list[Block]:
    """Every marked table of ``text``; a marker left open, or a closing marker without its opening
    one, is an error that names the line."""
    found, lines, current = [], text.splitlines(), None
    for number, line in enumerate(lines, 1):
        opened = _OPEN.match(line.strip())
        if opened:
            if current:
                raise ValueError(f"{where}:{number}: a table marker opens inside the one opened at line {current[1]}")
            current = (opened["file"], number, [])
        elif line.strip() == _CLOSE:
            if not current:
                raise ValueError(f"{where}:{number}: '{_CLOSE}' closes no table")
            found.append(Block(current[0], current[1], "\n".join(current[2])))
            current = None
        elif current:
            current[2].append(line)
    if current:
        raise ValueError(f"{where}:{current[1]}: the table of {current[0]} is never closed with '{_CLOSE}'")
    return found


def _source(root: Path, block: Block, where: str) -> str:
    path = root / block.file
    if not path.is_file():
        raise FileNotFoundError(f"{where}:{block.line}: the table copies {block.file}, which does not exist")
    return path.read_text().strip()


def stale(text: str, root: Path = PROJECT_ROOT, where: str = "README.md") -> list[str]:
    """One line per marked table that differs from its file (empty: all are up to date)."""
    return [f"{where}:{b.line}: the table differs from {b.file}" for b in blocks(text, where)
            if b.body.strip() != _source(root, b, where)]


def refreshed(text: str, root: Path = PROJECT_ROOT, where: str = "README.md") -> str:
    """``text`` with every marked table replaced by the current content of its file."""
    out, skipping = [], False
    sources = {b.line: _source(root, b, where) for b in blocks(text, where)}
    for number, line in enumerate(text.splitlines(), 1):
        if number in sources:
            out += [line, sources[number]]
            skipping = True
        elif line.strip() == _CLOSE:
            out.append(line)
            skipping = False
        elif not skipping:
            out.append(line)
    return "\n".join(out) + ("\n" if text.endswith("\n") else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which tables are out of date (exit 1)")
    parser.add_argument("--readme", type=Path, default=PROJECT_ROOT / "README.md")
    args = parser.parse_args(argv)
    text = args.readme.read_text()
    root, where = args.readme.resolve().parent, args.readme.name
    out_of_date = stale(text, root, where)
    if args.check:
        print("\n".join(out_of_date) or f"every table of {where} equals its file")
        return 1 if out_of_date else 0
    args.readme.write_text(refreshed(text, root, where))
    print(f"refreshed {len(out_of_date)} of {len(blocks(text, where))} tables in {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
