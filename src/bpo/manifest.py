"""Provenance of a reproduction run: which code, packages and machine ran which notebook, and which
figure and table files each notebook wrote (with their sha256).

``bpo.reproduce`` keeps one :class:`Manifest` per invocation and writes it to
``figures/manifest_<preset>.json`` after every notebook, so a killed run still leaves a record of what
finished. :func:`trace` answers "which notebook and run made this file?".
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from bpo.paths import PROJECT_ROOT, figures_dir

PACKAGES = ("torch", "transformers", "peft", "accelerate", "datasets", "papermill", "matplotlib", "seaborn",
            "numpy", "pandas")


def manifest_path(preset: str) -> Path:
    return figures_dir() / f"manifest_{preset}.json"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _shown(path: Path) -> str:
    """A path relative to the project when inside it, so manifests compare across checkouts."""
    path = Path(path).resolve()
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def git_state(root: Path = PROJECT_ROOT) -> dict:
    """The commit checked out and whether the tree differs from it; nulls (with the reason) without git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True,
                              timeout=30).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changes = git("status", "--porcelain").splitlines()
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", None) or err
        return {"commit": None, "dirty": None, "changes": None, "error": f"git unavailable: {str(detail).strip()}"}
    # the changed paths themselves say whether "dirty" means code or only regenerated figures
    return {"commit": commit, "dirty": bool(changes), "changes": changes[:50], "error": None}


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass  # not Linux: the caller falls back
    return None


def machine() -> dict:
    mem = _proc_field("/proc/meminfo", "MemTotal")  # "24684096 kB"
    info = {"platform": platform.platform(),
            "cpu": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or None,
            "logical_cores": os.cpu_count(),
            "ram_bytes": int(mem.split()[0]) * 1024 if mem else None,
            "gpus": None, "cpu_capability": None, "cpu_bf16": None}
    try:
        import torch  # imported here: ``reproduce --help`` must not load the model stack
    except ImportError:
        return info
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()  # e.g. AVX512, AMX: explains speed
    from bpo.precision import bf16_pays

    info["cpu_bf16"] = bf16_pays("cpu")  # bf16 or fp32 compute: the numbers' last digits depend on it
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_manifest(name: str) -> bool:
    return name.startswith(("manifest_", ".manifest_"))


def _snapshot(root: Path) -> dict[str, int]:
    """Every figure/table file under ``root`` with its mtime, the manifests themselves left out."""
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in root.rglob("*") if p.is_file() and not _is_manifest(p.name)}


def _write_json(path: Path, data: dict) -> None:
    # a temporary sibling renamed into place: a run killed mid-write never leaves half a manifest
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=repr)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not a readable manifest ({err}); delete it or run without --only") from err


@dataclass
class Manifest:
    """One ``reproduce`` invocation; ``notebooks`` may also hold entries kept from earlier runs (``--only``)."""

    preset: str
    n_seeds: int | None = None  # --seeds as asked; None: each notebook's own default
    parameters: dict = field(default_factory=dict)  # -p name=value, passed to every notebook
    merge: bool = False  # keep the existing manifest's entries for notebooks this run does not re-run
    git: dict = field(init=False)
    data: dict = field(init=False)

    def __post_init__(self) -> None:
        # read once, before any notebook writes: later notebooks would otherwise see earlier ones' figures as "dirty"
        self.git = git_state()
        self.data = {"preset": self.preset, "started": _now(), "updated": None, "git": self.git,
                     "n_seeds": self.n_seeds, "parameters": self.parameters, "packages": package_versions(),
                     "machine": machine(), "figures_dir": _shown(figures_dir()), "notebooks": []}
        if self.merge and self.path.exists():
            self.data["notebooks"] = _load(self.path).get("notebooks", [])
        self.write()  # at once: a run killed in its first notebook still says it started

    @property
    def path(self) -> Path:
        return manifest_path(self.preset)

    def write(self) -> None:
        self.data["updated"] = _now()
        _write_json(self.path, self.data)

    @contextmanager
    def notebook(self, name: str, parameters: dict, n_seeds: int | None, executed: Path) -> Iterator[dict]:
        """Record the notebook run inside the ``with`` block: time, status and the files it wrote."""
        root = figures_dir()
        before = _snapshot(root)
        entry = {"name": name, "started": _now(), "commit": self.git["commit"], "dirty": self.git["dirty"],
                 "parameters": parameters, "n_seeds": n_seeds, "executed": _shown(executed),
                 "status": "failed", "wall_s": None, "error": None, "outputs": []}
        start = time.perf_counter()
        try:
            yield entry
            entry["status"] = "ok"
        except BaseException as err:  # KeyboardInterrupt too: a stopped run records where it stopped
            entry["error"] = f"{type(err).__name__}: {err}"
            raise
        finally:
            entry["wall_s"] = round(time.perf_counter() - start, 3)
            # new files, or files whose mtime changed while the notebook ran
            changed = sorted(f for f, mtime in _snapshot(root).items() if before.get(f) != mtime)
            entry["outputs"] = [{"file": f, "sha256": _sha256(root / f), "bytes": (root / f).stat().st_size}
                                for f in changed]
            kept = [e for e in self.data["notebooks"] if e["name"] != name]
            self.data["notebooks"] = sorted(kept + [entry], key=lambda e: e["name"])
            self.write()


def trace(figure_name: str | Path, preset: str) -> dict:
    """Which notebook and run wrote a figure or table file (a name in ``figures/`` or a path to it).

    ``current`` says whether the file on disk still has the recorded sha256.
    """
    path = manifest_path(preset)
    if not path.exists():
        raise FileNotFoundError(f"no manifest for preset {preset!r} at {path}; run "
                                f"`python -m bpo.reproduce --preset {preset}` first")
    root, name = figures_dir(), Path(figure_name)
    if name.is_absolute() and name.resolve().is_relative_to(root.resolve()):
        name = name.resolve().relative_to(root.resolve())
    name = name.as_posix()
    data = _load(path)
    hits = [(nb, out) for nb in data["notebooks"] for out in nb["outputs"] if out["file"] == name]
    if not hits:
        raise LookupError(f"{name!r} is not in {path}: none of its {len(data['notebooks'])} notebook "
                          f"entries wrote it (a file from before the manifest, or from another preset?)")
    nb, out = max(hits, key=lambda h: (h[0]["started"], h[0]["name"]))  # the latest writer, if two wrote it
    on_disk = root / name
    return {"file": name, "sha256": out["sha256"], "current": on_disk.is_file() and _sha256(on_disk) == out["sha256"],
            "notebook": nb["name"], "started": nb["started"], "status": nb["status"], "commit": nb["commit"],
            "dirty": nb["dirty"], "executed": nb["executed"], "parameters": nb["parameters"], "manifest": str(path)}
