"""Execute the notebooks in order with papermill: ``python -m bpo.reproduce --preset smol``.

Executed copies go to ``runs/<preset>/`` (git-ignored), never over the source notebooks; the
notebooks themselves write figures and tables to ``figures/``, and ``figures/manifest_<preset>.json``
records which commit, packages and machine ran each notebook and which files it wrote
(:mod:`bpo.manifest`).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

from bpo import readme
from bpo.manifest import Manifest
from bpo.paths import NOTEBOOKS_DIR, PROJECT_ROOT, runs_dir
from bpo.presets import DEFAULT_PRESET, PRESETS


def notebooks(only: str | None = None) -> list[Path]:
    """The pipeline's notebooks in order (``NN_name.ipynb``), optionally those starting with ``only``."""
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if only is None or p.name.startswith(only)]


def declared_parameters(path: Path) -> dict:
    """The names and default values in a notebook's cell tagged ``parameters``."""
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        return {}
    declared = {}
    for node in ast.parse("".join(cells[0]["source"])).body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    try:
                        declared[target.id] = ast.literal_eval(node.value)
                    except (ValueError, TypeError):
                        declared[target.id] = None  # declared, but not a literal we can read
    return declared


def executed_path(path: Path, preset: str) -> Path:
    return runs_dir(preset) / path.name


def run_notebook(path: Path, preset: str, parameters: dict | None = None, progress: bool = True) -> Path:
    import papermill as pm  # imported here: the library itself does not need papermill

    out = executed_path(path, preset)
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


def _seeds(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--seeds must be a whole number >= 1, got {text!r}")
    return n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    parser.add_argument("--only", help="run only notebooks whose name starts with this (e.g. 00)")
    parser.add_argument("-p", "--parameter", action="append", type=_parse_parameter, default=[],
                        help="name=value passed to every notebook's parameters cell")
    parser.add_argument("--seeds", type=_seeds,
                        help="n_seeds for the notebooks that declare it (runs per method); default: theirs")
    args = parser.parse_args(argv)
    paths = notebooks(args.only)
    if not paths:
        parser.error(f"no notebook in {NOTEBOOKS_DIR} matches {args.only!r}")
    # --only re-runs a subset: the other notebooks' entries of the last manifest stay true, so keep them
    manifest = Manifest(args.preset, args.seeds, dict(args.parameter), merge=args.only is not None)
    for path in paths:
        declared = declared_parameters(path)
        parameters = dict(args.parameter)
        # only where declared: papermill would inject an unknown name with a warning, and it would do nothing
        if args.seeds is not None and "n_seeds" in declared:
            parameters["n_seeds"] = args.seeds
        seeds = parameters.get("n_seeds", declared["n_seeds"]) if "n_seeds" in declared else None
        print(f"== {path.name} (preset {args.preset})", flush=True)
        with manifest.notebook(path.name, {"preset": args.preset, **parameters}, seeds,
                               executed_path(path, args.preset)):
            out = run_notebook(path, args.preset, parameters)
        print(f"   -> {out}", flush=True)
    print(f"manifest: {manifest.path}", flush=True)
    _say_if_readme_is_stale()
    return 0


def _say_if_readme_is_stale() -> None:
    """The README quotes some of the tables a run rewrites: say so rather than leave it quoting old
    runs (a finished run never fails on this)."""
    path = PROJECT_ROOT / "README.md"
    try:
        out_of_date = readme.stale(path.read_text(), PROJECT_ROOT) if path.is_file() else []
    except (ValueError, FileNotFoundError) as err:
        print(f"README tables cannot be checked: {err}", flush=True)
        return
    if out_of_date:
        print(f"{len(out_of_date)} README tables differ from this run's files: `python -m bpo.readme` copies them in",
              flush=True)


if __name__ == "__main__":
    sys.exit(main())
