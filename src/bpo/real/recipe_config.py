"""The recipe's configuration (:mod:`bpo.real.recipe` runs it): :class:`RecipeConfig`, read from one
YAML file (``configs/recipes/llava-1.5-7b.yaml``) with ``--set key=value`` overrides
(:func:`apply_override`), its ground-truth :class:`Source` entries and :class:`AnswerSettings`, the
benchmarks' expected files (``BENCHMARK_FILES``), and :class:`ConfigError`, which names the file and the
key of a bad value. Relative paths are resolved against ``data_root``; unknown keys are rejected.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bpo.preference.config import PreferenceConfig
from bpo.training.tuning_config import TuningConfig

# The negatives that real data allows (the world's prior-guided ones need its scenes). The released
# data set has the first two.
REAL_NEGATIVE_TYPES = ("image_weakened", "error_injection", "self_generated")
DEFAULT_NEGATIVE_TYPES = ("image_weakened", "error_injection")
DEVICES = ("auto", "cuda", "cpu")
DTYPES = ("auto", "bfloat16", "float16", "float32")

# Each benchmark's files: key -> required. Wild's answers and context feed the judge (GPT-4's
# reference answer, the caption it reads instead of the image); HalBench's captions add the objects
# CHAIR's truth takes from COCO's captions (optional, as in load_object_halbench).
BENCHMARK_FILES = {
    "mmvet": {"json": True, "images": True},
    "wild": {"questions": True, "answers": True, "context": True, "images": True},
    "pope": {"files": True, "images": True},
    "halbench": {"prompts": True, "instances": True, "captions": False, "synonyms": True, "images": True},
}
# Answer budgets: long enough that LLaVA-1.5 ends on its own (the answers record every cut one).
DEFAULT_MAX_NEW_TOKENS = {"mmvet": 1024, "wild": 1024, "pope": 128, "halbench": 512}
# LLaVA-1.5's POPE questions carry this instruction (its llava_pope_test.jsonl); the others go as published.
DEFAULT_PROMPT_SUFFIX = {"pope": "\nAnswer the question using a single word or phrase."}


class ConfigError(ValueError):
    """A bad recipe file: the message names the file and the key."""

    def __init__(self, where: str, key: str, message: str):
        self.where, self.key = where, key
        super().__init__(f"{where}: key {key!r}: {message}")


# ----------------------------------------------------------------------------------------------------
# YAML


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``2e-6`` (no dot) as a string; a recipe means a number."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def _parse_value(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


def apply_override(raw: dict, assignment: str, where: str) -> None:
    """``key=value`` (``tuning.lr=1e-5``, ``sources.0.n=100``; the value read as YAML) set in ``raw``."""
    if "=" not in assignment:
        raise ConfigError(where, assignment, "--set needs key=value")
    key, text = assignment.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(where, key, "--set key has an empty part")
    node: Any = raw
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[:depth + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(where, here, f"not an index of the {len(node)}-entry list")
            if last:
                node[int(part)] = _parse_value(text)
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = _parse_value(text)
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(where, here, f"cannot set inside a {type(node).__name__}")


# ----------------------------------------------------------------------------------------------------
# settings


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Source:
    """A ground-truth source: a LLaVA conversation file and the folder its image paths are relative
    to; ``n`` records sampled (None: every record with its image); ``max_new_tokens`` caps each
    negative (a detailed caption needs more than a short answer)."""

    name: str
    json: Path
    images: Path
    n: int | None
    max_new_tokens: int = 512


@dataclass(frozen=True)
class AnswerSettings:
    """How the benchmarks are answered: greedy, ``batch_size`` prompts at a time, at most
    ``max_new_tokens[benchmark]`` tokens, with ``prompt_suffix[benchmark]`` after the question."""

    max_new_tokens: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_MAX_NEW_TOKENS))
    batch_size: int = 16
    prompt_suffix: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PROMPT_SUFFIX))


@dataclass(frozen=True)
class RecipeConfig:
    """One run of the recipe. Build it with :meth:`from_yaml` (or :meth:`from_mapping`), which
    resolves relative paths against ``data_root`` and rejects unknown keys and bad values with a
    :class:`ConfigError` naming the key and the file. See ``configs/recipes/README.md``."""

    model: str  # a local directory (absolute) or a Hub id
    output: Path
    data_root: Path
    sources: tuple[Source, ...] = ()
    seed: int = 0
    noise_place: str = PreferenceConfig.noise_place
    noise_step: int = PreferenceConfig.noise_step
    temperature: float = PreferenceConfig.temperature
    batch_size: int = PreferenceConfig.batch_size  # generation batch of the negatives
    chunk_size: int = 512  # ground truths per saved part of the negatives (the unit of resuming)
    negative_types: tuple[str, ...] = DEFAULT_NEGATIVE_TYPES
    tuning: TuningConfig = TuningConfig()
    benchmarks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    answer: AnswerSettings = AnswerSettings()
    device: str = "auto"
    dtype: str = "auto"
    pairs_json: Path | None = None  # the user's copy of the released BPO data, used instead of ours
    pairs_images: Path | None = None  # the folder its image paths are relative to (default data_root)
    where: str = field(default="<config>", compare=False)  # the file, for messages

    def __post_init__(self):
        def bad(key: str, message: str):
            raise ConfigError(self.where, key, message)

        from bpo.noise import PLACES, T

        if not isinstance(self.model, str) or not self.model.strip():
            bad("model", f"must be a path or Hub id, got {self.model!r}")
        if not _is_int(self.seed):
            bad("seed", f"must be an int, got {self.seed!r}")
        if self.noise_place not in PLACES:
            bad("noise_place", f"must be one of {PLACES}, got {self.noise_place!r}")
        if not _is_int(self.noise_step) or not 0 <= self.noise_step < T:
            bad("noise_step", f"must be an int in [0, {T}), got {self.noise_step!r}")
        if not _is_number(self.temperature) or self.temperature <= 0:
            bad("temperature", f"must be a number > 0, got {self.temperature!r}")
        for key in ("batch_size", "chunk_size"):
            if not _is_int(getattr(self, key)) or getattr(self, key) < 1:
                bad(key, f"must be an int >= 1, got {getattr(self, key)!r}")
        types = self.negative_types
        if not types or any(t not in REAL_NEGATIVE_TYPES for t in types) or len(set(types)) != len(types):
            bad("negative_types", f"must be a non-empty list of distinct types from {REAL_NEGATIVE_TYPES}, "
                                  f"got {list(types)!r}")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", str(self.device)):
            bad("device", f"must be one of {DEVICES} or cuda:N, got {self.device!r}")
        if self.dtype not in DTYPES:
            bad("dtype", f"must be one of {DTYPES}, got {self.dtype!r}")
        if not self.sources and self.pairs_json is None:
            bad("sources", "needs at least one source (or pairs_json: the released data)")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            bad("sources", f"source names must be distinct, got {names}")
        unknown = [b for b in self.benchmarks if b not in BENCHMARK_FILES]
        if unknown:
            bad("benchmarks", f"unknown benchmark(s) {unknown}; expected some of {tuple(BENCHMARK_FILES)}")

    # -- reading

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> RecipeConfig:
        path = Path(path)
        where = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"recipe config {where} does not exist")
        try:
            raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
        except yaml.YAMLError as e:
            raise ConfigError(where, "<file>", f"not valid YAML ({e})") from e
        if not isinstance(raw, dict):
            raise ConfigError(where, "<file>", f"the top level must be a mapping of keys, got {type(raw).__name__}")
        for assignment in overrides:
            apply_override(raw, assignment, f"{where} (--set)")
        return cls.from_mapping(raw, where)

    @classmethod
    def from_mapping(cls, raw: Mapping, where: str = "<config>") -> RecipeConfig:
        def bad(key: str, message: str):
            raise ConfigError(where, key, message)

        allowed = {f.name for f in dataclasses.fields(cls)} - {"where"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            bad(unknown[0], f"unknown key; the keys are {sorted(allowed)}")
        for key in ("model", "output", "data_root"):
            if raw.get(key) in (None, ""):
                bad(key, "missing (required)")

        def text(key: str, value) -> str:
            if not isinstance(value, str) or not value.strip():
                bad(key, f"must be a non-empty string, got {value!r}")
            return value.strip()

        data_root = Path(os.path.abspath(os.path.expanduser(text("data_root", raw["data_root"]))))

        def path(key: str, value) -> Path:
            p = Path(os.path.expanduser(text(key, value)))
            return Path(os.path.abspath(p if p.is_absolute() else data_root / p))

        kwargs: dict[str, Any] = {"data_root": data_root, "output": path("output", raw["output"]),
                                  "model": _resolve_model(text("model", raw["model"]), data_root)}
        for key in ("seed", "noise_place", "noise_step", "temperature", "batch_size", "chunk_size", "device",
                    "dtype"):
            if key in raw:
                kwargs[key] = raw[key]
        if "negative_types" in raw:
            types = raw["negative_types"]
            if not isinstance(types, list):
                bad("negative_types", f"must be a list, got {types!r}")
            kwargs["negative_types"] = tuple(types)
        for key in ("pairs_json", "pairs_images"):
            if raw.get(key) is not None:
                kwargs[key] = path(key, raw[key])
        kwargs["sources"] = tuple(_read_source(i, s, path, bad) for i, s in enumerate(_list(raw, "sources", bad)))
        kwargs["tuning"] = _read_tuning(raw.get("tuning") or {}, raw.get("seed", 0), bad)
        kwargs["benchmarks"] = _read_benchmarks(raw.get("benchmarks") or {}, path, bad)
        kwargs["answer"] = _read_answer(raw.get("answer") or {}, bad)
        return cls(**kwargs, where=where)

    # -- derived

    def torch_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"{self.where}: device {self.device!r} but torch sees no CUDA device "
                               "(set device: cpu or auto)")
        return self.device

    def torch_dtype(self, device: str):
        import torch

        if self.dtype == "auto":  # bf16 halves a 7B model on a GPU; CPU generation autocasts fp32 itself
            return torch.bfloat16 if device.startswith("cuda") else torch.float32
        return getattr(torch, self.dtype)

    def stage_dir(self, stage: str) -> Path:
        return self.output / stage


def _resolve_model(value: str, data_root: Path) -> str:
    """``owner/name`` that is not a folder under ``data_root`` is a Hub id; anything else a local
    folder (relative to ``data_root``), returned absolute, so a missing download fails as one."""
    p = Path(os.path.expanduser(value))
    local = p if p.is_absolute() else data_root / p
    if not local.exists() and not p.is_absolute() and not value.startswith(("~", ".")) \
            and re.fullmatch(r"[\w.-]+/[\w.-]+", value):
        return value
    return os.path.abspath(local)


def _list(raw: Mapping, key: str, bad) -> list:
    value = raw.get(key) or []
    if not isinstance(value, list):
        bad(key, f"must be a list, got {type(value).__name__}")
    return value


def _read_source(i: int, s, path, bad) -> Source:
    key = f"sources[{i}]"
    if not isinstance(s, dict):
        bad(key, f"must be a mapping with name, json, images, n; got {s!r}")
    fields = {"name", "json", "images", "n", "max_new_tokens"}
    unknown = sorted(set(s) - fields)
    if unknown:
        bad(f"{key}.{unknown[0]}", f"unknown key; a source has {sorted(fields)}")
    for k in ("name", "json", "images", "n"):
        if s.get(k) is None:
            bad(f"{key}.{k}", "missing (required)")
    if not isinstance(s["name"], str) or not re.fullmatch(r"[A-Za-z0-9._-]+", s["name"]):
        bad(f"{key}.name", f"must be a name of letters, digits, '.', '_', '-', got {s['name']!r}")
    n = s["n"]
    if n == "all":
        n = None
    elif not _is_int(n) or n < 1:
        bad(f"{key}.n", f"must be an int >= 1 or 'all', got {n!r}")
    budget = s.get("max_new_tokens", Source.max_new_tokens)
    if not _is_int(budget) or budget < 1:
        bad(f"{key}.max_new_tokens", f"must be an int >= 1, got {budget!r}")
    return Source(s["name"], path(f"{key}.json", s["json"]), path(f"{key}.images", s["images"]), n, budget)


def _read_tuning(raw, seed, bad) -> TuningConfig:
    if not isinstance(raw, dict):
        bad("tuning", f"must be a mapping of TuningConfig fields, got {raw!r}")
    defaults = {f.name: f.default for f in dataclasses.fields(TuningConfig)}
    values = {"seed": seed} if _is_int(seed) else {}
    for k, v in raw.items():
        if k not in defaults:
            bad(f"tuning.{k}", f"unknown TuningConfig field; the fields are {sorted(defaults)}")
        want = type(defaults[k])
        ok = (isinstance(v, bool) if want is bool else _is_number(v) if want is float
              else _is_int(v) if want is int else isinstance(v, want))
        if not ok:
            bad(f"tuning.{k}", f"must be a {want.__name__}, got {v!r}")
        values[k] = float(v) if want is float else v
    try:
        return TuningConfig(**values)
    except ValueError as e:
        bad("tuning", str(e))


def _read_benchmarks(raw, path, bad) -> dict[str, dict[str, Any]]:
    if not isinstance(raw, dict):
        bad("benchmarks", f"must be a mapping benchmark -> files, got {raw!r}")
    out = {}
    for name, files in raw.items():
        if name not in BENCHMARK_FILES:
            bad(f"benchmarks.{name}", f"unknown benchmark; expected some of {tuple(BENCHMARK_FILES)}")
        if files is None:
            continue  # an emptied entry (e.g. --set benchmarks.wild=null) turns the benchmark off
        spec = BENCHMARK_FILES[name]
        if not isinstance(files, dict):
            bad(f"benchmarks.{name}", f"must be a mapping with {sorted(spec)}, got {files!r}")
        unknown = sorted(set(files) - set(spec))
        if unknown:
            bad(f"benchmarks.{name}.{unknown[0]}", f"unknown key; {name} has {sorted(spec)}")
        resolved: dict[str, Any] = {}
        for k, required in spec.items():
            key = f"benchmarks.{name}.{k}"
            if files.get(k) is None:
                if required:
                    bad(key, "missing (required)")
                continue
            if k == "files":
                if not isinstance(files[k], list) or not files[k]:
                    bad(key, f"must be a non-empty list of files, got {files[k]!r}")
                resolved[k] = [path(f"{key}[{j}]", f) for j, f in enumerate(files[k])]
            else:
                resolved[k] = path(key, files[k])
        out[name] = resolved
    return out


def _read_answer(raw, bad) -> AnswerSettings:
    if not isinstance(raw, dict):
        bad("answer", f"must be a mapping, got {raw!r}")
    fields = {"max_new_tokens", "batch_size", "prompt_suffix"}
    unknown = sorted(set(raw) - fields)
    if unknown:
        bad(f"answer.{unknown[0]}", f"unknown key; answer has {sorted(fields)}")
    budgets = dict(DEFAULT_MAX_NEW_TOKENS)
    given = raw.get("max_new_tokens") or {}
    if not isinstance(given, dict):
        bad("answer.max_new_tokens", f"must be a mapping benchmark -> tokens, got {given!r}")
    for k, v in given.items():
        if k not in BENCHMARK_FILES:
            bad(f"answer.max_new_tokens.{k}", f"unknown benchmark; expected some of {tuple(BENCHMARK_FILES)}")
        if not _is_int(v) or v < 1:
            bad(f"answer.max_new_tokens.{k}", f"must be an int >= 1, got {v!r}")
        budgets[k] = v
    suffixes = dict(DEFAULT_PROMPT_SUFFIX)
    given = raw.get("prompt_suffix") or {}
    if not isinstance(given, dict):
        bad("answer.prompt_suffix", f"must be a mapping benchmark -> text, got {given!r}")
    for k, v in given.items():
        if k not in BENCHMARK_FILES:
            bad(f"answer.prompt_suffix.{k}", f"unknown benchmark; expected some of {tuple(BENCHMARK_FILES)}")
        if v is not None and not isinstance(v, str):
            bad(f"answer.prompt_suffix.{k}", f"must be a string or null, got {v!r}")
        suffixes[k] = v or ""
    batch = raw.get("batch_size", AnswerSettings.batch_size)
    if not _is_int(batch) or batch < 1:
        bad("answer.batch_size", f"must be an int >= 1, got {batch!r}")
    return AnswerSettings(budgets, batch, suffixes)
