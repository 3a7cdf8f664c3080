"""vLLM on a checkpoint in the published SAIL-VL2 layout (tests/upstream_fixture.py): the
plugin loads it as it is (bf16 shards, stored tied lm_head, select_layer -1, force_image_size
null, flash_attention_2 asked for), its logprobs match policy/'s model (also after a weight
update that moves the tied embeddings), the engine and the
learner see the same prompt ids (the checkpoint's template), and an export loads again in
both with the same logprobs for a fixed prompt."""

from __future__ import annotations

import copy
import os

# Before vLLM is imported anywhere: the in-process engine (no worker processes).
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

import pytest
import torch
from upstream_fixture import FIXTURE_SYSTEM, build_upstream_checkpoint

from policy.checkpoint import checkpoint_tensors, load_checkpoint
from policy.source_layout import export_checkpoint
from rollout.config import RolloutConfig
from rollout.engine import RolloutEngine
from rollout.parity import parity_requests, perturb_, policy_logprobs, run_parity, weight_buckets
from rollout.types import RolloutRequest, SamplingSettings

pytestmark = pytest.mark.integration

MAX_ABS, MEAN_ABS, MIN_TOKENS = 1e-3, 1e-4, 1000
PARITY_SAMPLING = SamplingSettings(n=4, temperature=1.0, top_p=1.0, max_tokens=64, seed=0)
GREEDY = SamplingSettings(n=1, temperature=0.0, top_p=1.0, max_tokens=24, seed=0)
FIXED = [
    RolloutRequest("fixed-text", "What is 12 + 30?", (), "think"),
]


def _engine(path):
    return RolloutEngine(
        RolloutConfig(model=str(path), dtype="float32", max_model_len=4096, kv_cache_gib=1)
    )


def _fixed(engine, tmp_path):
    from rollout.parity import synthetic_image

    image = tmp_path / "fixed.png"
    if not image.exists():
        synthetic_image(700, 448, seed=3).save(image)
    requests = [*FIXED, RolloutRequest("fixed-image", "Describe.", (str(image),), "direct")]
    result = engine.generate(requests, GREEDY)
    assert not result.failures, result.failures
    return {c.prompt_id: c for c in result.completions}


def test_vllm_loads_the_published_layout_and_round_trips(tmp_path):
    source = build_upstream_checkpoint(tmp_path / "SAIL-VL2-tiny")
    model = load_checkpoint(source).model
    engine = _engine(source)
    try:
        report = run_parity(engine, model, parity_requests(tmp_path), PARITY_SAMPLING)
        assert report.n_tokens >= MIN_TOKENS, report
        assert report.max_abs_diff <= MAX_ABS, report
        assert report.mean_abs_diff <= MEAN_ABS, report
        # The engine's own tokenizer renders the checkpoint's template like policy/ does.
        messages = [{"role": "user", "content": "What is 2 + 3?"}]
        vllm_text = engine.llm.get_tokenizer().apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )
        assert vllm_text == engine.processor.chat_text("What is 2 + 3?", 0, "direct")
        assert vllm_text.startswith(f"<|im_start|>system\n{FIXTURE_SYSTEM}<|im_end|>")
        before = _fixed(engine, tmp_path)
        # A weight update that moves the (tied) embeddings reaches the logits too.
        perturbed = copy.deepcopy(model)
        perturb_(perturbed, scale=0.05, seed=1)
        engine.update_weights(weight_buckets(checkpoint_tensors(perturbed)), version=1)
        report = run_parity(engine, perturbed, parity_requests(tmp_path), PARITY_SAMPLING)
        assert report.max_abs_diff <= MAX_ABS, report
        assert report.mean_abs_diff <= MEAN_ABS, report
    finally:
        engine.shutdown()

    exported = export_checkpoint(source, tmp_path / "export")
    again = load_checkpoint(exported).model
    for completion in before.values():
        assert completion.prompt_token_ids[0] == engine.processor.tokenizer.convert_tokens_to_ids(
            "<|im_start|>"
        )
    ids = torch.tensor([list(before["fixed-text"].prompt_token_ids)])
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, again(input_ids=ids).logits)
    engine = _engine(exported)
    try:
        after = _fixed(engine, tmp_path)
    finally:
        engine.shutdown()
    for pid, first in before.items():
        second = after[pid]
        assert second.prompt_token_ids == first.prompt_token_ids
        assert second.token_ids == first.token_ids
        assert second.logprobs == first.logprobs  # the same weights, bit for bit
    # policy/'s model on the export scores the engine's greedy tokens like vLLM did.
    c = before["fixed-text"]
    ours = policy_logprobs(again, c.prompt_token_ids, c.token_ids, None)
    assert (ours - torch.tensor(c.logprobs, dtype=torch.float64)).abs().max() < MAX_ABS
