"""The LLM-judge client and judges against a stand-in OpenAI-compatible server on 127.0.0.1.

Each test scripts the server's answers, one behaviour per request (a good reply, an HTTP error, a
reply too slow for the client's timeout, a malformed body, ...), and reads back the requests it
received. No test reaches beyond loopback, and none waits for a real backoff: the client's
``sleep`` is replaced by a recorder.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bpo.evaluation.llm_judge import (
    ChatClient, JudgeConfig, JudgeError, JudgeParseError, MMVetJudge, WildJudge, parse_mmvet_score,
    parse_wild_scores, summarise_judged_wild,
)
from bpo.evaluation.mmvet import summarise_mmvet

KEY = "sk-test-secret-1234"
MESSAGES = [{"role": "user", "content": "Grade this."}]


def good(content: str) -> tuple:
    return ("reply", 200, json.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant",
                                                                                      "content": content}}]}), {})


def status(code: int, body: str = "error", headers: dict | None = None) -> tuple:
    return ("reply", code, body, headers or {})


def slow(seconds: float) -> tuple:
    return ("slow", seconds, *good("too late")[1:])


class StandIn:
    """Scripted behaviours (popped one per request) and the requests received."""

    def __init__(self):
        self.script: deque = deque()
        self.requests: list[dict] = []
        self.release = threading.Event()  # wakes slow handlers at teardown
        self.lock = threading.Lock()

    def push(self, *behaviours: tuple) -> None:
        self.script.extend(behaviours)

    def next(self, request: dict) -> tuple:
        with self.lock:
            self.requests.append(request)
            # unscripted requests get a 418, which the client does not retry: the test fails loudly
            return self.script.popleft() if self.script else status(418, "unscripted request")


def _handler(standin: StandIn):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            behaviour = standin.next({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            if behaviour[0] == "slow":
                standin.release.wait(behaviour[1])
                behaviour = ("reply", *behaviour[2:])
            _, code, text, headers = behaviour
            payload = text.encode()
            try:
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up on a slow reply
                pass

        def log_message(self, *args):  # keep pytest's output clean
            pass

    return Handler


@pytest.fixture
def server(monkeypatch):
    # a proxy from the environment must not capture loopback requests
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    standin = StandIn()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(standin))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    standin.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield standin
    standin.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=2)


def make_client(server: StandIn, **overrides) -> tuple[ChatClient, list[float]]:
    delays: list[float] = []
    settings = {"base_url": server.base_url, "model": "judge-4", "api_key": KEY, "timeout_s": 2.0,
                "max_retries": 3, "backoff_s": 1.0, "backoff_cap_s": 30.0, "max_tokens": 64, **overrides}
    return ChatClient(JudgeConfig(**settings), sleep=delays.append), delays


# ----------------------------------------------------------------------------------------------
# the client


def test_good_request_returns_content_and_sends_the_right_request(server):
    client, delays = make_client(server)
    server.push(good("0.7"))
    assert client.complete(MESSAGES) == "0.7"
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["json"] == {"model": "judge-4", "messages": MESSAGES, "temperature": 0.0, "max_tokens": 64}
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert (client.calls, client.cache_hits, client.retries, delays) == (1, 0, 0, [])


def test_retries_server_errors_with_growing_backoff(server):
    client, delays = make_client(server, backoff_s=0.5, backoff_cap_s=1.5)
    server.push(status(500), status(502), status(503), good("ok"))
    assert client.complete(MESSAGES) == "ok"
    assert client.calls == 4 and client.retries == 3
    assert delays == [0.5, 1.0, 1.5]  # doubling, then capped


def test_429_honours_retry_after_capped(server):
    client, delays = make_client(server, backoff_cap_s=10.0)
    server.push(status(429, "slow down", {"Retry-After": "7"}), status(429, "slow down", {"Retry-After": "3600"}),
                status(429, "slow down"), good("ok"))
    assert client.complete(MESSAGES) == "ok"
    # the server's 7 s, its hour capped to 10 s, then the exponential schedule's third step
    assert delays == [7.0, 10.0, 4.0]


def test_retry_after_as_a_past_http_date_means_now(server):
    client, delays = make_client(server)
    server.push(status(503, "busy", {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}), good("ok"))
    assert client.complete(MESSAGES) == "ok" and delays == [0.0]


def test_timeout_is_retried(server):
    client, delays = make_client(server, timeout_s=0.3)
    server.push(slow(2.0), good("ok"))
    assert client.complete(MESSAGES) == "ok"
    assert client.calls == 2 and delays == [1.0]


def test_gives_up_after_max_retries_with_a_clear_error(server):
    client, delays = make_client(server, max_retries=2)
    server.push(status(500, "upstream exploded"), status(500, "upstream exploded"), status(500, "upstream exploded"))
    with pytest.raises(JudgeError, match=r"after 3 attempts.*HTTP 500.*upstream exploded") as info:
        client.complete(MESSAGES)
    assert info.value.status == 500
    assert client.calls == 3 and delays == [1.0, 2.0]
    assert KEY not in str(info.value)


def test_no_retry_on_other_4xx(server):
    client, delays = make_client(server)
    server.push(status(400, '{"error": "unknown model judge-4"}'), good("never sent"))
    with pytest.raises(JudgeError, match=r"HTTP 400.*unknown model judge-4") as info:
        client.complete(MESSAGES)
    assert info.value.status == 400
    assert client.calls == 1 and delays == []


def test_malformed_replies_are_retried(server):
    client, delays = make_client(server)
    server.push(status(200, "<html>gateway</html>"), status(200, json.dumps({"object": "chat.completion"})),
                status(200, json.dumps({"choices": [{"message": {"content": None}}]})), good("fine"))
    assert client.complete(MESSAGES) == "fine"
    assert client.calls == 4 and delays == [1.0, 2.0, 4.0]


def test_malformed_reply_gives_up_quoting_its_start(server):
    client, _ = make_client(server, max_retries=1)
    server.push(status(200, "<html>gateway " + "x" * 1000), status(200, json.dumps({"choices": []})))
    with pytest.raises(JudgeError, match=r"no choices\[0\]\.message\.content.*'\{\"choices\": \[\]\}'"):
        client.complete(MESSAGES)
    server.push(status(200, "<html>gateway " + "x" * 1000), status(200, "<html>gateway " + "x" * 1000))
    with pytest.raises(JudgeError, match=r"not JSON: '<html>gateway x+\.\.\.'") as info:
        client.complete(MESSAGES)
    assert len(str(info.value)) < 600  # the start of the reply, not all of it


def test_connection_refused_is_retried_then_reported():
    with socket.socket() as s:  # a loopback port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = ChatClient(JudgeConfig(f"http://127.0.0.1:{port}/v1", "judge-4", KEY, timeout_s=0.5, max_retries=1),
                        sleep=lambda s: None)
    with pytest.raises(JudgeError, match="after 2 attempts.*connection failed"):
        client.complete(MESSAGES)
    assert client.calls == 2


def test_disk_cache_saves_identical_requests_only(server, tmp_path):
    client, _ = make_client(server, cache_dir=tmp_path)
    server.push(good("first"), good("warmer"), good("other model"))
    assert client.complete(MESSAGES) == "first"
    assert client.complete(MESSAGES) == "first"
    assert (len(server.requests), client.cache_hits) == (1, 1)
    assert client.complete(MESSAGES, temperature=0.5) == "warmer"
    assert len(server.requests) == 2
    other, _ = make_client(server, cache_dir=tmp_path, model="judge-5")
    assert other.complete(MESSAGES) == "other model"
    assert len(server.requests) == 3
    # a fresh client (a rerun) reads the same folder
    again, _ = make_client(server, cache_dir=tmp_path)
    assert again.complete(MESSAGES) == "first" and again.calls == 0
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 3 and all(f.endswith(".json") for f in files)  # no temp files left behind


@pytest.mark.parametrize("garbage", ['{"content": "0.9', '{"request": null, "content": "0.9"}', "[]"])
def test_corrupt_cache_entry_is_reported_and_refetched(server, tmp_path, garbage):
    client, _ = make_client(server, cache_dir=tmp_path)
    server.push(good("0.3"), good("0.3"))
    client.complete(MESSAGES)
    path = client.cache_path(MESSAGES)
    assert path.exists()
    path.write_text(garbage)
    with pytest.warns(RuntimeWarning, match="corrupt cache entry"):
        assert client.complete(MESSAGES) == "0.3"
    assert len(server.requests) == 2 and client.corrupt_cache_entries == 1
    assert json.loads(path.read_text())["content"] == "0.3"  # repaired


# ----------------------------------------------------------------------------------------------
# the judges


MMVET_RECORDS = [
    {"item_id": "v1", "question": "What fruits are there?", "answer": "apple<AND>banana",
     "response": "An apple and a banana.", "capabilities": ["Rec"]},
    {"item_id": "v2", "question": "What is 2+3?", "answer": "5", "response": "It is 6.",
     "capabilities": ["OCR", "Math"]},
    {"item_id": "v3", "question": "Where is it?", "answer": "beach<OR>seaside", "response": "On a beach.",
     "capabilities": ["Rec", "Spat"]},
]


def test_mmvet_judge_scores_records(server):
    client, _ = make_client(server)
    server.push(good("1.0"), good("0.0"), good("Correctness: 0.9"))
    results = MMVetJudge(client).score(MMVET_RECORDS, progress=False)
    assert [r["item_id"] for r in results] == ["v1", "v2", "v3"]
    assert [r["score"] for r in results] == [1.0, 0.0, 0.9]
    assert results[1]["capabilities"] == ["OCR", "Math"] and results[2]["judge_reply"] == "Correctness: 0.9"
    prompt = server.requests[0]["json"]["messages"][-1]["content"]
    assert "<AND>" in prompt and "<OR>" in prompt and "1.0" in prompt and "0.5" in prompt and "0.0" in prompt
    assert prompt.endswith("What fruits are there? | apple <AND> banana | An apple and a banana. | ")
    summary = summarise_mmvet(results)
    assert summary["Total"] == pytest.approx(100 * 1.9 / 3) and summary["Rec"] == pytest.approx(95.0)


def test_judge_shows_a_progress_bar(server, capsys):
    client, _ = make_client(server)
    server.push(good("1.0"))
    MMVetJudge(client).score(MMVET_RECORDS[:1])
    assert "judging mmvet" in capsys.readouterr().err


@pytest.mark.parametrize("reply", ["I cannot tell from the image.", "7", "-0.2", ""])
def test_mmvet_judge_rejects_replies_without_a_score(server, reply):
    client, _ = make_client(server)
    server.push(good(reply))
    with pytest.raises(JudgeParseError, match=r"item 'v1'") as info:
        MMVetJudge(client).score(MMVET_RECORDS[:1], progress=False)
    assert repr(reply) in str(info.value)


@pytest.mark.parametrize("reply, score", [("0.5", 0.5), (" 1", 1.0), ("0.", 0.0), (".3 because", 0.3),
                                          ("Score: 0.8\nThe answer names one of two fruits.", 0.8)])
def test_parse_mmvet_score(reply, score):
    assert parse_mmvet_score(reply) == score


WILD_RECORDS = [
    {"item_id": "w1", "question": "Describe the scene.", "caption": "A red bus on a street.",
     "reference": "A red bus drives down a street.", "response": "A blue bus.", "category": "detail"},
    {"item_id": "w2", "question": "Why is it here?", "caption": "A dog at a park.",
     "reference": "The dog is playing.", "response": "It is playing fetch.", "category": "reasoning"},
]


def test_wild_judge_scores_records_and_summarises_like_llava(server):
    client, _ = make_client(server)
    server.push(good("8 4\nAssistant 2 gets the colour wrong."),
                good("Assistant 1: 5, Assistant 2: 10\nBoth fine."))
    results = WildJudge(client).score(WILD_RECORDS, progress=False)
    assert [(r["reference_score"], r["model_score"], r["score"]) for r in results] == [(8, 4, 50.0), (5, 10, 200.0)]
    assert [r["category"] for r in results] == ["detail", "reasoning"]
    messages = server.requests[0]["json"]["messages"]
    assert messages[0]["role"] == "system"
    user = messages[1]["content"]
    for text in ("A red bus on a street.", "Describe the scene.", "[Assistant 1]\nA red bus drives down a street.",
                 "[Assistant 2]\nA blue bus.", "1 to 10"):
        assert text in user
    summary = summarise_judged_wild(results)
    # LLaVA divides the mean scores: 100 * (4 + 10) / (8 + 5), not the mean of 50 and 200
    assert summary["all"] == pytest.approx(100 * 14 / 13)
    assert summary["detail"] == 50.0 and summary["counts"] == {"detail": 1, "reasoning": 1, "all": 2}


@pytest.mark.parametrize("reply", ["Both answers are good.\n8 7", "8\n7", "8 7 6", "11 5", "0 5"])
def test_wild_judge_rejects_replies_without_two_scores(server, reply):
    client, _ = make_client(server)
    server.push(good(reply))
    with pytest.raises(JudgeParseError, match=r"item 'w1'") as info:
        WildJudge(client).score(WILD_RECORDS[:1], progress=False)
    assert repr(reply) in str(info.value)


@pytest.mark.parametrize("reply, scores", [("8 7\nreason", (8.0, 7.0)), ("\n 7.5, 9 \n", (7.5, 9.0)),
                                           ("Assistant 1: 6 Assistant 2: 3", (6.0, 3.0))])
def test_parse_wild_scores(reply, scores):
    assert parse_wild_scores(reply) == scores


def test_judges_reject_incomplete_records(server):
    client, _ = make_client(server)
    with pytest.raises(ValueError, match=r"record 0 \(w1\) lacks \['caption'\]"):
        WildJudge(client).score([{k: v for k, v in WILD_RECORDS[0].items() if k != "caption"}], progress=False)
    assert server.requests == []


def test_judged_results_are_cached_across_runs(server, tmp_path):
    client, _ = make_client(server, cache_dir=tmp_path)
    server.push(good("1.0"), good("0.0"), good("0.9"))
    first = MMVetJudge(client).score(MMVET_RECORDS, progress=False)
    rerun, _ = make_client(server, cache_dir=tmp_path)
    assert MMVetJudge(rerun).score(MMVET_RECORDS, progress=False) == first
    assert rerun.calls == 0 and rerun.cache_hits == 3


# ----------------------------------------------------------------------------------------------
# configuration


ENV = ("BPO_JUDGE_BASE_URL", "BPO_JUDGE_MODEL", "BPO_JUDGE_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY")


def test_from_env_reads_variables_with_openai_fallbacks(monkeypatch, tmp_path):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.com/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("BPO_JUDGE_MODEL", "gpt-4-0613")
    config = JudgeConfig.from_env(cache_dir=tmp_path, timeout_s=5)
    assert (config.base_url, config.model, config.api_key, config.cache_dir, config.timeout_s) == \
        ("https://api.example.com/v1", "gpt-4-0613", KEY, tmp_path, 5)
    monkeypatch.setenv("BPO_JUDGE_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("BPO_JUDGE_API_KEY", "EMPTY")
    config = JudgeConfig.from_env()
    assert (config.base_url, config.api_key, config.cache_dir) == ("http://localhost:8000/v1", "EMPTY", None)


def test_from_env_names_the_missing_variables(monkeypatch):
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BPO_JUDGE_MODEL", "gpt-4")
    missing = r"BPO_JUDGE_BASE_URL or OPENAI_BASE_URL; BPO_JUDGE_API_KEY or OPENAI_API_KEY"
    with pytest.raises(ValueError, match=missing) as info:
        JudgeConfig.from_env()
    assert "BPO_JUDGE_MODEL" not in str(info.value)
    monkeypatch.setenv("BPO_JUDGE_API_KEY", KEY)
    monkeypatch.setenv("BPO_JUDGE_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("BPO_JUDGE_MODEL", "  ")  # blank counts as missing
    with pytest.raises(ValueError, match=r"set BPO_JUDGE_MODEL to name"):
        JudgeConfig.from_env()


def test_repr_hides_the_key():
    config = JudgeConfig("https://api.example.com/v1", "gpt-4", KEY)
    assert KEY not in repr(config) and "gpt-4" in repr(config)
    assert KEY not in repr(ChatClient(config))


@pytest.mark.parametrize("change, message", [
    ({"base_url": "api.example.com"}, "base_url"), ({"model": ""}, "model"), ({"api_key": ""}, "api_key"),
    ({"timeout_s": 0}, "timeout_s"), ({"max_retries": -1}, "max_retries"), ({"max_retries": 1.5}, "max_retries"),
    ({"backoff_s": -1.0}, "backoff_s"), ({"backoff_s": 5.0, "backoff_cap_s": 1.0}, "backoff_cap_s"),
    ({"temperature": 3.0}, "temperature"), ({"max_tokens": 0}, "max_tokens"), ({"cache_dir": 3}, "cache_dir"),
])
def test_config_rejects_bad_values(change, message):
    settings = {"base_url": "https://api.example.com/v1", "model": "gpt-4", "api_key": KEY, **change}
    with pytest.raises(ValueError, match=rf"JudgeConfig\.{message}"):
        JudgeConfig(**settings)


def test_config_defaults():
    config = JudgeConfig("https://api.example.com/v1/", "gpt-4", KEY)
    assert (config.timeout_s, config.max_retries, config.backoff_s, config.temperature, config.cache_dir) == \
        (60.0, 5, 1.0, 0.0, None)
    assert config.endpoint == "https://api.example.com/v1/chat/completions"
