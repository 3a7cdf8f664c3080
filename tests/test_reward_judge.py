"""The think-quality judge against a fake OpenAI-compatible server."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewards import (
    ErrorRateExceeded,
    JudgeConfig,
    RewardInput,
    RewardRuntime,
    RewardsConfig,
    RewardSetConfig,
    RuntimeConfig,
)
from rewards.judge import JudgeError, ThinkQualityJudge

GOOD = "<think>2 apples plus 2 apples make 4 apples.</think>The answer is \\boxed{4}."


class FakeJudge(BaseHTTPRequestHandler):
    replies: list = []  # each: a reply string, an int HTTP status, or ("sleep", seconds)
    requests: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((body, dict(self.headers)))
        reply = type(self).replies.pop(0) if type(self).replies else "1"
        if isinstance(reply, tuple):
            time.sleep(reply[1])
            reply = "1"
        if isinstance(reply, int):
            self.send_response(reply)
            self.end_headers()
            return
        payload = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": reply}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    FakeJudge.replies, FakeJudge.requests = [], []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeJudge)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def _judge(url, **kw):
    return ThinkQualityJudge(
        JudgeConfig(base_url=url, model="judge", timeout_s=kw.pop("timeout_s", 5.0), **kw)
    )


def test_verdicts_and_request_shape(server, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "secret")
    judge = _judge(server, api_key_env="JUDGE_KEY")
    FakeJudge.replies = ["1", "<think>hmm</think> 0"]
    assert judge(GOOD, "4", {"mode": "think", "question": "2+2 apples?"}) == 1.0
    assert judge(GOOD, "4", {"mode": "think"}) == 0.0
    body, headers = FakeJudge.requests[0]
    assert body["model"] == "judge" and body["temperature"] == 0.0
    assert "2+2 apples?" in body["messages"][1]["content"]
    assert "2 apples plus 2 apples" in body["messages"][1]["content"]
    assert "Logical soundness" in body["messages"][0]["content"]
    assert headers["Authorization"] == "Bearer secret"


def test_malformed_thought_and_direct_mode_skip_the_request(server):
    judge = _judge(server, direct_mode_score=1.0)
    assert judge("<think></think>\\boxed{4}", "4", {"mode": "think"}) == 0.0
    assert judge("<think>a</think><think>b</think>\\boxed{4}", "4", {"mode": "think"}) == 0.0
    assert judge("\\boxed{4}", "4", {"mode": "direct"}) == 1.0
    assert FakeJudge.requests == []


def test_strict_parsing_retries_then_fails(server):
    judge = _judge(server, retries=2)
    FakeJudge.replies = ["The reasoning is fine, 1", "yes", "1"]
    assert judge(GOOD, "4", {}) == 1.0
    assert len(FakeJudge.requests) == 3
    FakeJudge.replies = ["10", "maybe", "score: 1"]
    with pytest.raises(JudgeError, match="unparsable judge reply"):
        judge(GOOD, "4", {})


def test_server_errors_and_timeouts_are_retried(server):
    judge = _judge(server, retries=2, timeout_s=0.5)
    FakeJudge.replies = [503, ("sleep", 1.5), "0"]
    assert judge(GOOD, "4", {}) == 0.0
    FakeJudge.replies = [404]
    with pytest.raises(JudgeError, match="HTTP 404"):
        judge(GOOD, "4", {})


def test_unreachable_judge_fails_the_batch_clearly():
    config = RewardsConfig(
        sets={
            "default": RewardSetConfig(combine="gated", alpha=0.9, gate=["answer", "think_quality"])
        },
        judge=JudgeConfig(
            base_url="http://127.0.0.1:9/v1", model="judge", timeout_s=0.5, retries=0
        ),
        runtime=RuntimeConfig(isolation=False),
    )
    with (
        RewardRuntime(config) as runtime,
        pytest.raises(ErrorRateExceeded, match="reward 'think_quality' raised JudgeError"),
    ):
        runtime.score([RewardInput(GOOD, "4")])


def test_gated_combination_through_the_runtime(server):
    config = RewardsConfig(
        sets={
            "default": RewardSetConfig(combine="gated", alpha=0.9, gate=["answer", "think_quality"])
        },
        judge=JudgeConfig(base_url=server, model="judge", timeout_s=2.0, retries=1),
        runtime=RuntimeConfig(timeout_s=10.0, workers=1),
    )
    FakeJudge.replies = ["1", "0", "1"]
    batch = [RewardInput(GOOD, "4"), RewardInput(GOOD, "4"), RewardInput(GOOD, "5")]
    with RewardRuntime(config) as runtime:
        results = runtime.score(batch)
    assert [r.reward for r in results] == [1.0, pytest.approx(0.1), pytest.approx(0.1)]
    assert results[1].components == {
        "answer": 1.0,
        "answer/answer_found": 1.0,
        "answer/multiple_answers": 0.0,
        "think_quality": 0.0,
        "format": 1.0,
    }
