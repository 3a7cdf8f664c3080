"""The think-quality reward: an LLM judge behind an OpenAI-compatible chat endpoint rates the
thought 0 or 1 for logical soundness, grounding and answer consistency.

Off unless ``judge.base_url`` is set. The judge's reply is parsed strictly (a lone ``0`` or
``1``, optionally after the judge's own ``<think>`` block); a malformed reply, a timeout or a
server error is retried, and after the last retry the sample ends with outcome ``error``.
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from rewards.config import JudgeConfig, RewardsConfig
from rewards.extract import THINK_CLOSE, THINK_OPEN
from rewards.format_reward import think_format_ok

RUBRIC = """You grade the reasoning of a model's answer. Reply 1 only if ALL hold:
1. Logical soundness: every step follows from the previous ones; no contradictions or unjustified leaps.
2. Grounding: facts and quantities used are those given in the question (or true in general); nothing is invented.
3. Answer consistency: the final answer is the one the reasoning actually reaches.
Otherwise reply 0. Reply with the single digit 0 or 1 and nothing else."""

_REPLY = re.compile(r"\s*([01])\s*\.?\s*")
_JUDGE_THOUGHT = re.compile(r"^\s*<think>.*?</think>", re.DOTALL)


class JudgeError(RuntimeError):
    """The judge gave no usable verdict after all retries."""


def parse_verdict(reply: str) -> int | None:
    """0 or 1 from the judge's reply, None if the reply is anything else.

    >>> parse_verdict(" 1\\n"), parse_verdict("<think>fine</think>0"), parse_verdict("1 because")
    (1, 0, None)
    """
    text = _JUDGE_THOUGHT.sub("", reply, count=1)
    match = _REPLY.fullmatch(text)
    return int(match.group(1)) if match else None


def judge_messages(question: str, reference: str, thought: str, final: str) -> list[dict[str, str]]:
    """The chat messages sent to the judge for one sample."""
    user = (
        f"Question:\n{question or '(not given)'}\n\nReference answer:\n{reference}\n\n"
        f"Model's reasoning:\n{thought}\n\nModel's final answer:\n{final.strip()}\n\n"
        "Grade the reasoning: 0 or 1."
    )
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": user}]


class ThinkQualityJudge:
    """Callable reward scoring a thought through the judge endpoint: 1.0 when the judge
    finds the reasoning sound, grounded and consistent with the answer, else 0.0. Malformed
    thoughts score 0.0 and direct answers ``direct_mode_score`` without a request.

    >>> judge = ThinkQualityJudge(JudgeConfig(base_url="http://127.0.0.1:8000/v1", model="m"))
    >>> judge("<think></think>\\boxed{4}", "4", {"mode": "think"})
    0.0
    >>> judge("\\boxed{4}", "4", {"mode": "direct"})
    1.0
    """

    def __init__(self, config: JudgeConfig):
        if not config.enabled:
            raise ValueError(
                "judge.base_url: think_quality needs a judge endpoint; set judge.base_url"
            )
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"

    def __call__(self, completion: str, answer: str, metadata: Mapping[str, Any]) -> float:
        if metadata.get("mode", "think") == "direct":
            return self.config.direct_mode_score
        # A malformed thought (empty, repeated, unclosed) is not worth a request.
        if not think_format_ok(completion):
            return 0.0
        text = completion.lstrip()
        close = text.find(THINK_CLOSE)
        thought = text[len(THINK_OPEN) : close].strip()[-self.config.max_thought_chars :]
        final = text[close + len(THINK_CLOSE) :]
        question = str(metadata.get("question") or metadata.get("prompt") or "")
        return float(self.ask(judge_messages(question, answer, thought, final)))

    def ask(self, messages: list[dict[str, str]]) -> int:
        """The verdict for ``messages``, retrying failures; JudgeError after the last try."""
        body = json.dumps(
            {
                "model": self.config.model,
                "messages": messages,
                "temperature": 0.0,
                "max_tokens": self.config.max_tokens,
            }
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.config.api_key_env:
            headers["Authorization"] = f"Bearer {os.environ.get(self.config.api_key_env, '')}"
        problem = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(min(0.2 * 2 ** (attempt - 1), 2.0))  # back off a busy server
            request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    payload = json.loads(response.read())
            except urllib.error.HTTPError as err:
                problem = f"HTTP {err.code} from {self.url}"
                if 400 <= err.code < 500 and err.code not in (408, 429):
                    raise JudgeError(
                        f"judge request refused: {problem} (check judge.model)"
                    ) from err
                continue
            except (urllib.error.URLError, TimeoutError, OSError, ValueError) as err:
                problem = f"{type(err).__name__}: {err}"
                continue
            reply = _reply_text(payload)
            verdict = parse_verdict(reply) if reply is not None else None
            if verdict is not None:
                return verdict
            problem = f"unparsable judge reply {str(reply)[:80]!r}"
        raise JudgeError(f"judge gave no verdict after {self.config.retries + 1} tries: {problem}")


def _reply_text(payload: Any) -> str | None:
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


def think_quality_reward(config: RewardsConfig) -> ThinkQualityJudge:
    """Factory of the built-in ``think_quality`` reward (needs the judge section)."""
    return ThinkQualityJudge(config.judge)


think_quality_reward.needs_config = True  # type: ignore[attr-defined]
