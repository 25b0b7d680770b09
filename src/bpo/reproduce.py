"""Execute the notebooks in order with papermill: ``python -m bpo.reproduce --preset smol``.

Executed copies go to ``runs/<preset>/`` (git-ignored), never over the source notebooks; the
notebooks themselves write figures and tables to ``figures/``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from bpo.paths import NOTEBOOKS_DIR, runs_dir
from bpo.presets import DEFAULT_PRESET, PRESETS


def notebooks(only: str | None = None) -> list[Path]:
    """The pipeline's notebooks in order (``NN_name.ipynb``), optionally those starting with ``only``."""
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if only is None or p.name.startswith(only)]


def run_notebook(path: Path, preset: str, parameters: dict | None = None, progress: bool = True) -> Path:
    import papermill as pm  # imported here: the library itself does not need papermill

    out = runs_dir(preset) / path.name
    pm.execute_notebook(str(path), str(out), parameters={"preset": preset, **(parameters or {})},
                        cwd=str(path.parent), progress_bar=progress, kernel_name="python3")
    return out


def _parse_parameter(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"parameter {text!r} must look like name=value")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare word is a string


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    parser.add_argument("--only", help="run only notebooks whose name starts with this (e.g. 00)")
    parser.add_argument("-p", "--parameter", action="append", type=_parse_parameter, default=[],
                        help="name=value passed to every notebook's parameters cell")
    args = parser.parse_args(argv)
    paths = notebooks(args.only)
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS_DIR} matches {args.only!r}")
    for path in paths:
        print(f"== {path.name} (preset {args.preset})", flush=True)
        print(f"   -> {run_notebook(path, args.preset, dict(args.parameter))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
