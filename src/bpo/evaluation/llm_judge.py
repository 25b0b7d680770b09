"""LLM judges for the real MM-Vet and LLaVA-Bench-in-the-Wild, behind an OpenAI-compatible client.

The paper scores both benchmarks with GPT-4. This module holds:

- :class:`JudgeConfig`: where the judge lives (base URL, model, key) and how patiently to ask it;
  :meth:`JudgeConfig.from_env` reads ``BPO_JUDGE_BASE_URL`` / ``BPO_JUDGE_MODEL`` /
  ``BPO_JUDGE_API_KEY`` (falling back to ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY``).
- :class:`ChatClient`: a standard-library client for ``POST {base_url}/chat/completions`` with
  retries (exponential backoff; ``Retry-After`` honoured) and an on-disk response cache, so a rerun
  of a judged benchmark costs no request.
- :class:`Judge` and two judges: :class:`MMVetJudge` (a correctness score in [0, 1] against a ground
  truth that may use ``<AND>`` / ``<OR>``, MM-Vet's grader idea) and :class:`WildJudge` (the reference
  and the model's answer each rated 1-10, LLaVA-Bench's review idea; relative score = 100 x
  model / reference). :func:`summarise_judged_wild` aggregates as LLaVA's summary script does
  (ratio of the mean scores, not mean of the ratios).

Judges take plain dict records (question, ground truth, response), never a model, like the rule
judges in ``mmvet.py`` and ``wild.py``. The prompts are written for this repository; they follow the
published graders' structure, not their text.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import math
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

# how much of a reply or an error body an error message quotes: enough to recognise, not a page
QUOTE_CHARS = 300


class JudgeError(RuntimeError):
    """The judge's server could not give a usable reply (after any retries)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status  # the HTTP status when the failure was one, else None


class JudgeParseError(ValueError):
    """A judge reply did not hold the score(s) its prompt asked for."""


def _quote(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return repr(text[:QUOTE_CHARS] + ("..." if len(text) > QUOTE_CHARS else ""))


# ----------------------------------------------------------------------------------------------
# configuration


@dataclass(frozen=True)
class JudgeConfig:
    """Where the judge is and how to ask it. ``api_key`` is kept out of ``repr`` so logs and
    notebooks never show it."""

    base_url: str  # e.g. https://api.openai.com/v1 or a local vLLM server's http://host:port/v1
    model: str  # the judge model's name as the server knows it (the paper: GPT-4)
    api_key: str = field(repr=False)  # local servers that need none accept any, e.g. "EMPTY"
    timeout_s: float = 60.0  # per HTTP attempt; a judge reply is short, so a minute is generous
    max_retries: int = 5  # retries after the first attempt, shared by all retryable failures
    backoff_s: float = 1.0  # first retry delay; doubles each retry ...
    backoff_cap_s: float = 30.0  # ... up to this, which also caps a server's Retry-After
    temperature: float = 0.0  # deterministic grading, so the cache and reruns agree
    max_tokens: int = 512  # room for Wild's explanation line; MM-Vet's reply is one number
    cache_dir: str | Path | None = None  # None: no cache (every call is an HTTP request)

    def __post_init__(self):
        def bad(name: str, want: str):
            raise ValueError(f"JudgeConfig.{name} must be {want}, got {getattr(self, name)!r}")

        if not isinstance(self.base_url, str) or not re.match(r"https?://[^/\s]+", self.base_url):
            bad("base_url", "an http:// or https:// URL")
        if not isinstance(self.model, str) or not self.model.strip():
            bad("model", "a non-empty string")
        if not isinstance(self.api_key, str) or not self.api_key:
            # not echoed: the value may be a real key
            raise ValueError("JudgeConfig.api_key must be a non-empty string (use e.g. 'EMPTY' for a "
                             "local server that needs no key)")
        if not _is_number(self.timeout_s) or self.timeout_s <= 0:
            bad("timeout_s", "a positive number of seconds")
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) or self.max_retries < 0:
            bad("max_retries", "an int >= 0")
        if not _is_number(self.backoff_s) or self.backoff_s < 0:
            bad("backoff_s", "a number of seconds >= 0")
        if not _is_number(self.backoff_cap_s) or self.backoff_cap_s < self.backoff_s:
            bad("backoff_cap_s", f"a number of seconds >= backoff_s ({self.backoff_s})")
        if not _is_number(self.temperature) or not 0 <= self.temperature <= 2:
            bad("temperature", "a number in [0, 2]")
        if not isinstance(self.max_tokens, int) or isinstance(self.max_tokens, bool) or self.max_tokens < 1:
            bad("max_tokens", "a positive int")
        if self.cache_dir is not None and not isinstance(self.cache_dir, (str, Path)):
            bad("cache_dir", "a path or None")

    @property
    def endpoint(self) -> str:
        return self.base_url.rstrip("/") + "/chat/completions"

    @classmethod
    def from_env(cls, cache_dir: str | Path | None = None, **overrides) -> JudgeConfig:
        """The judge named by the environment: ``BPO_JUDGE_BASE_URL`` (or ``OPENAI_BASE_URL``),
        ``BPO_JUDGE_MODEL`` and ``BPO_JUDGE_API_KEY`` (or ``OPENAI_API_KEY``); ``overrides`` set the
        other fields (timeouts, retries, ...)."""
        wanted = {"base_url": ("BPO_JUDGE_BASE_URL", "OPENAI_BASE_URL"),
                  "model": ("BPO_JUDGE_MODEL",),
                  "api_key": ("BPO_JUDGE_API_KEY", "OPENAI_API_KEY")}
        found, missing = {}, []
        for name, variables in wanted.items():
            value = next((os.environ[v] for v in variables if os.environ.get(v, "").strip()), None)
            if value is None:
                missing.append(" or ".join(variables))
            else:
                found[name] = value.strip()
        if missing:
            raise ValueError("JudgeConfig.from_env: set " + "; ".join(missing) +
                             " to name the LLM judge (an OpenAI-compatible chat-completions server)")
        return cls(**found, cache_dir=cache_dir, **overrides)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ----------------------------------------------------------------------------------------------
# the HTTP client


class _Retryable(Exception):
    """One failed attempt worth another try; ``delay`` is a server-requested wait, if any."""

    def __init__(self, message: str, delay: float | None = None, status: int | None = None):
        super().__init__(message)
        self.delay, self.status = delay, status


class ChatClient:
    """An OpenAI-compatible chat-completions client using only the standard library.

    Counters, for tests and for knowing what a run cost: ``calls`` (HTTP requests sent, retries
    included), ``cache_hits``, ``retries`` and ``corrupt_cache_entries``. ``sleep`` is injectable so
    tests can record the backoff delays instead of waiting.
    """

    def __init__(self, config: JudgeConfig, sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.sleep = sleep
        self.cache_dir = Path(config.cache_dir) if config.cache_dir is not None else None
        self.calls = 0
        self.cache_hits = 0
        self.retries = 0
        self.corrupt_cache_entries = 0

    def __repr__(self) -> str:
        return f"ChatClient({self.config!r})"

    # -- the one public call

    def complete(self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None,
                 max_tokens: int | None = None) -> str:
        """The content of the first choice of the judge's reply to ``messages`` (a list of
        ``{"role", "content"}``); ``temperature`` and ``max_tokens`` default to the config's.
        Served from the cache when the same request was answered before."""
        request = self._request(messages, temperature, max_tokens)
        path = self._cache_path(request)
        if path is not None:
            cached = self._read_cache(path, request)
            if cached is not None:
                self.cache_hits += 1
                return cached
        content = self._fetch(request)
        if path is not None:
            self._write_cache(path, request, content)
        return content

    def cache_path(self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None,
                   max_tokens: int | None = None) -> Path | None:
        """Where the reply to this request is (or would be) cached; None without a cache. Deleting
        the file makes the next identical call ask the judge again."""
        return self._cache_path(self._request(messages, temperature, max_tokens))

    # -- request and cache key

    def _request(self, messages, temperature, max_tokens) -> dict:
        if not isinstance(messages, Sequence) or isinstance(messages, str) or not messages:
            raise ValueError("ChatClient.complete: messages must be a non-empty list of {'role', 'content'} dicts")
        for i, m in enumerate(messages):
            if not (isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
                raise ValueError(f"ChatClient.complete: message {i} must be a dict with str 'role' and "
                                 f"'content', got {m!r}")
        temperature = self.config.temperature if temperature is None else temperature
        max_tokens = self.config.max_tokens if max_tokens is None else max_tokens
        return {"model": self.config.model,
                "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
                "temperature": temperature, "max_tokens": max_tokens}

    def _cache_path(self, request: dict) -> Path | None:
        if self.cache_dir is None:
            return None
        # the request body *is* the key: any change of model, prompt, temperature or length asks anew
        key = hashlib.sha256(json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
        return self.cache_dir / key[:2] / f"{key}.json"

    def _read_cache(self, path: Path, request: dict) -> str | None:
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(entry, dict) or not isinstance(entry.get("content"), str):
                raise ValueError("no 'content' string")
            if entry.get("request") != request:
                raise ValueError("stored request differs from this one")
            return entry["content"]
        except (OSError, UnicodeDecodeError, ValueError) as err:
            # a truncated or hand-edited entry must not become a score: say so, and ask again
            self.corrupt_cache_entries += 1
            warnings.warn(f"ChatClient: ignoring corrupt cache entry {path} ({err}); asking the judge again",
                          RuntimeWarning, stacklevel=3)
            return None

    def _write_cache(self, path: Path, request: dict, content: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # temp file + rename: a crash mid-write leaves no half-written entry under the real name
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem[:16] + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"request": request, "content": content}, f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    # -- HTTP with retries

    def _fetch(self, request: dict) -> str:
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            try:
                return self._attempt(request)
            except _Retryable as err:
                if attempt + 1 == attempts:
                    raise JudgeError(f"ChatClient: no usable reply from {self.config.endpoint} after "
                                     f"{attempts} attempts; last: {err}", status=err.status) from None
                self.retries += 1
                self.sleep(self._delay(attempt, err.delay))
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, requested: float | None) -> float:
        cap = self.config.backoff_cap_s
        if requested is not None:
            return min(max(requested, 0.0), cap)
        return min(self.config.backoff_s * 2 ** attempt, cap)

    def _attempt(self, request: dict) -> str:
        data = json.dumps(request).encode("utf-8")
        http_request = urllib.request.Request(
            self.config.endpoint, data=data, method="POST",
            headers={"Content-Type": "application/json", "Accept": "application/json",
                     "Authorization": f"Bearer {self.config.api_key}"})
        self.calls += 1
        try:
            with urllib.request.urlopen(http_request, timeout=self.config.timeout_s) as response:
                body = response.read()
        except urllib.error.HTTPError as err:
            detail = _read_error_body(err)
            message = f"HTTP {err.code} {err.reason}: {_quote(detail)}"
            if err.code == 429 or err.code >= 500:
                raise _Retryable(message, _retry_after(err.headers), err.code) from None
            # other 4xx (bad key, unknown model, bad request) will not get better by asking again
            raise JudgeError(f"ChatClient: {self.config.endpoint} refused the request: {message}",
                             status=err.code) from None
        except (urllib.error.URLError, TimeoutError, socket.timeout, ConnectionError,
                http.client.HTTPException, OSError) as err:
            reason = getattr(err, "reason", err)
            raise _Retryable(f"connection failed or timed out after {self.config.timeout_s}s: "
                             f"{type(reason).__name__}: {reason}") from None
        return _content_of(body)


def _read_error_body(err: urllib.error.HTTPError) -> bytes:
    try:
        return err.read(4 * QUOTE_CHARS) or b""
    except Exception:  # the body of an error is a courtesy; its absence must not mask the status
        return b""


def _retry_after(headers) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent
    or unreadable."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max((when - datetime.now(timezone.utc)).total_seconds(), 0.0)


def _content_of(body: bytes) -> str:
    """``choices[0].message.content`` of a chat-completions reply, or a retryable error quoting it."""
    try:
        reply = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise _Retryable(f"reply is not JSON: {_quote(body)}") from None
    try:
        content = reply["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    if not isinstance(content, str):
        raise _Retryable(f"reply has no choices[0].message.content string: {_quote(body)}")
    return content


# ----------------------------------------------------------------------------------------------
# judges


class Judge(ABC):
    """Scores records (plain dicts) with an LLM; ``score`` returns one result dict per record, in
    order, each with ``item_id``, ``score`` and the raw ``judge_reply``."""

    name: str = "judge"
    required: tuple[str, ...] = ()  # keys every record must have
    passthrough: tuple[str, ...] = ()  # record keys copied to the result (for per-group summaries)

    def __init__(self, client: ChatClient, max_tokens: int | None = None):
        self.client = client
        self.max_tokens = max_tokens  # None: the client's config decides

    def score(self, records: Sequence[Mapping], progress: bool = True) -> list[dict]:
        records = list(records)
        for i, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise ValueError(f"{type(self).__name__}: record {i} must be a dict, got {type(record).__name__}")
            missing = [k for k in self.required if k not in record]
            if missing:
                raise ValueError(f"{type(self).__name__}: record {i} ({record.get('item_id', '?')}) lacks {missing}")
        results = []
        for record in tqdm(records, desc=f"judging {self.name}", disable=not progress):
            reply = self.client.complete(self.messages(record), max_tokens=self.max_tokens)
            result = {"item_id": record["item_id"], **self.parse(reply, record["item_id"]), "judge_reply": reply}
            results.append({**{k: record[k] for k in self.passthrough if k in record}, **result})
        return results

    @abstractmethod
    def messages(self, record: Mapping) -> list[dict]:
        """The chat messages that ask the judge about one record."""

    @abstractmethod
    def parse(self, reply: str, item_id) -> dict:
        """The score fields read from the judge's reply (raising :class:`JudgeParseError`)."""


# MM-Vet-style grading: a few short, made-up examples fix the scale and the meaning of <AND>/<OR>.
MMVET_INSTRUCTIONS = """\
You grade answers to questions about images. Compare the model's answer with the ground truth and \
give the answer a correctness score between 0.0 (wrong) and 1.0 (right), in steps of 0.1. \
In a ground truth, "<AND>" joins parts that must all appear for full marks (give partial credit for \
some of them), and "<OR>" joins alternatives any one of which is enough. \
Judge the meaning, not the wording; extra correct detail is fine, but a wrong or contradicting \
claim about what was asked lowers the score. Reply with the score only, e.g. 0.6.

Examples (question | ground truth | answer | score):
How many dogs are on the sofa? | 3 | There are three dogs lying on the sofa. | 1.0
What colour is the bus? | red | The bus is blue. | 0.0
Which two fruits are in the bowl? | apple <AND> banana | I can see an apple and some grapes. | 0.5
What does the sign say? | STOP <OR> stop sign | It is a stop sign. | 1.0
What is 12 + 7 on the board? | 19 | The board shows 12 + 7, which is 18 or 19. | 0.5
What is the man holding? | umbrella | Nothing can be seen in his hands. | 0.0
"""

WILD_SYSTEM = "You are a careful and impartial reviewer of answers about images."

# LLaVA-Bench-style review: the judge cannot see the image, so a caption stands in for it.
WILD_INSTRUCTIONS = """\
Above, a user asked a question about an image, which you cannot see; the context describes it. \
Two assistants answered. Rate each answer for helpfulness, relevance, accuracy (with respect to \
the context) and level of detail, with an overall score from 1 to 10 (higher is better). \
On the first line write only the two scores, Assistant 1's then Assistant 2's, separated by a space. \
From the second line on, explain your ratings briefly; do not let the order in which the answers \
appear, or their length alone, sway you."""

_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)")


def parse_mmvet_score(reply: str, item_id=None) -> float:
    """The first number in ``reply``, which must lie in [0, 1] (a JudgeParseError otherwise)."""
    match = _NUMBER.search(reply)
    value = float(match.group()) if match else None
    if value is None or not 0.0 <= value <= 1.0:
        found = "no number" if value is None else f"first number {match.group()}"
        raise JudgeParseError(f"MM-Vet judge reply for item {item_id!r} has {found}, not a score in "
                              f"[0, 1]: {_quote(reply)}")
    return value


def parse_wild_scores(reply: str, item_id=None) -> tuple[float, float]:
    """The two scores (Assistant 1, Assistant 2) on the first non-empty line of ``reply``, each
    in [0, 10] (a JudgeParseError otherwise)."""
    line = next((line for line in reply.splitlines() if line.strip()), "")
    # tolerate "Assistant 1: 8, Assistant 2: 7" by dropping the labels' own numbers
    numbers = _NUMBER.findall(re.sub(r"assistant\s*[12]\s*:?", " ", line, flags=re.IGNORECASE))
    scores = [float(n) for n in numbers]
    if len(scores) != 2 or not all(0.0 <= s <= 10.0 for s in scores):
        raise JudgeParseError(f"Wild judge reply for item {item_id!r} does not start with a line of two "
                              f"scores in [0, 10]: {_quote(reply)}")
    return scores[0], scores[1]


class MMVetJudge(Judge):
    """MM-Vet's GPT-4 grader idea. Records: ``item_id``, ``question``, ``answer`` (ground truth,
    may use ``<AND>`` / ``<OR>``), ``response``; ``capabilities`` is passed through so
    ``mmvet.summarise_mmvet`` can summarise the results (scores in [0, 1])."""

    name = "mmvet"
    required = ("item_id", "question", "answer", "response")
    passthrough = ("capabilities",)

    def messages(self, record: Mapping) -> list[dict]:
        # one line per field, as in the examples; newlines inside an answer would break the table
        def flat(text) -> str:
            return " ".join(str(text).split())
        answer = flat(str(record["answer"]).replace("<AND>", " <AND> ").replace("<OR>", " <OR> "))
        row = " | ".join([flat(record["question"]), answer, flat(record["response"]), ""])
        return [{"role": "user", "content": MMVET_INSTRUCTIONS + row}]

    def parse(self, reply: str, item_id) -> dict:
        return {"score": parse_mmvet_score(reply, item_id)}


class WildJudge(Judge):
    """LLaVA-Bench's review idea. Records: ``item_id``, ``question``, ``caption`` (the image's
    context), ``reference`` (the reference answer, shown as Assistant 1) and ``response`` (the
    model's, Assistant 2); ``category`` is passed through. Results hold ``reference_score``,
    ``model_score`` and ``score`` = 100 x model / reference (a reference rated 0 is an error)."""

    name = "wild"
    required = ("item_id", "question", "caption", "reference", "response")
    passthrough = ("category",)

    def messages(self, record: Mapping) -> list[dict]:
        content = (f"[Context]\n{record['caption']}\n\n[Question]\n{record['question']}\n\n"
                   f"[Assistant 1]\n{record['reference']}\n[End of Assistant 1]\n\n"
                   f"[Assistant 2]\n{record['response']}\n[End of Assistant 2]\n\n"
                   f"[Instructions]\n{WILD_INSTRUCTIONS}\n")
        return [{"role": "system", "content": WILD_SYSTEM}, {"role": "user", "content": content}]

    def parse(self, reply: str, item_id) -> dict:
        reference, model = parse_wild_scores(reply, item_id)
        if reference == 0:
            raise JudgeParseError(f"Wild judge rated the reference answer of item {item_id!r} 0, so the "
                                  f"relative score is undefined: {_quote(reply)}")
        return {"reference_score": reference, "model_score": model, "score": 100.0 * model / reference}


def summarise_judged_wild(results: Sequence[Mapping]) -> dict:
    """LLaVA-Bench's summary of :class:`WildJudge` results: per category and ``all``, 100 x the mean
    model score / the mean reference score (LLaVA's ``summarize_gpt_review.py`` divides the means,
    not per-item ratios); NaN for an empty group. ``counts`` gives the items behind each."""
    groups: dict[str, list[Mapping]] = {}
    for r in results:
        if "category" in r:
            groups.setdefault(str(r["category"]), []).append(r)
    groups = dict(sorted(groups.items()))
    groups["all"] = list(results)

    def relative(rs) -> float:
        reference = sum(r["reference_score"] for r in rs)
        return 100.0 * sum(r["model_score"] for r in rs) / reference if rs and reference else math.nan

    summary: dict = {name: relative(rs) for name, rs in groups.items()}
    summary["counts"] = {name: len(rs) for name, rs in groups.items()}
    return summary


__all__ = [
    "ChatClient", "Judge", "JudgeConfig", "JudgeError", "JudgeParseError", "MMVET_INSTRUCTIONS", "MMVetJudge",
    "WILD_INSTRUCTIONS", "WildJudge", "parse_mmvet_score", "parse_wild_scores", "summarise_judged_wild",
]
