"""vLLM rollout of tiny SAIL-VL2 models (dense and MoE) against policy/'s model, in float32
on CPU: logprob parity before and after weight updates, the vision tower really running,
placeholder expansion, banned image tokens, bad input, weight-update errors.

One in-process vLLM engine per preset is shared by the tests of that preset (vLLM allows one
engine per process at a time; pytest finishes one preset before starting the next).
"""

from __future__ import annotations

import copy
import os

# Before vLLM is imported anywhere: the in-process engine (no worker processes).
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"

import pytest
import torch

from policy.checkpoint import checkpoint_tensors, init_checkpoint, load_checkpoint
from policy.processor import IMAGE_MARKER, build_chat_text
from rollout.config import RolloutConfig
from rollout.engine import RolloutEngine
from rollout.parity import (
    compare,
    parity_requests,
    perturb_,
    policy_logprobs,
    run_parity,
    synthetic_image,
    weight_buckets,
)
from rollout.types import RolloutRequest, SamplingSettings
from rollout.weight_names import UnknownWeightError

pytestmark = pytest.mark.integration

MAX_ABS, MEAN_ABS, MIN_TOKENS = 1e-3, 1e-4, 1000
PARITY_SAMPLING = SamplingSettings(n=4, temperature=1.0, top_p=1.0, max_tokens=64, seed=0)


@pytest.fixture(scope="module", params=["tiny", "tiny-moe"])
def setup(request, tmp_path_factory):
    """Engine + the learner-side HF model kept equal to the engine's weights."""
    root = tmp_path_factory.mktemp(request.param)
    path = init_checkpoint(request.param, root / "ckpt")
    engine = RolloutEngine(
        RolloutConfig(model=str(path), dtype="float32", max_model_len=4096, kv_cache_gib=1)
    )
    state = {
        "preset": request.param,
        "engine": engine,
        "model": load_checkpoint(path).model,
        "requests": parity_requests(root),
        "root": root,
    }
    yield state
    engine.shutdown()


def _push(state, named_tensors, bucket_bytes=1 << 20):
    engine = state["engine"]
    return engine.update_weights(
        weight_buckets(named_tensors, bucket_bytes), version=engine.weight_version + 1
    )


def _assert_parity(report):
    assert report.n_tokens >= MIN_TOKENS, report
    assert report.max_abs_diff <= MAX_ABS, report
    assert report.mean_abs_diff <= MEAN_ABS, report


def test_parity_text_and_images_before_and_after_update(setup):
    engine, model, requests = setup["engine"], setup["model"], setup["requests"]
    _assert_parity(run_parity(engine, model, requests, PARITY_SAMPLING))

    original = copy.deepcopy(model)
    perturb_(model, scale=0.05, seed=1)
    stats = _push(setup, checkpoint_tensors(model))
    assert stats.num_buckets > 1 and stats.num_bytes > 0

    result = engine.generate(requests, PARITY_SAMPLING)
    assert {c.weight_version for c in result.completions} == {stats.version}
    _assert_parity(compare(model, engine.processor, requests, result.completions))
    # The update really reached vLLM: the old weights no longer explain its samples.
    stale = compare(original, engine.processor, requests, result.completions)
    assert stale.max_abs_diff > 1e-2


def test_vision_tower_runs_and_matches(setup):
    engine, model = setup["engine"], setup["model"]
    from vllm import SamplingParams

    question = RolloutRequest(
        "vision", "Describe the colours of this image in detail.", (), "direct"
    )
    images = [synthetic_image(640, 400, seed) for seed in (10, 11)]  # same size: same tiles
    tail_logprobs = []
    for image in images:
        request = RolloutRequest("vision", question.prompt, (image,), "direct")
        inputs = engine.processor.process(request.prompt, [image], request.mode)
        params = SamplingParams(max_tokens=1, prompt_logprobs=0, temperature=0)
        out = engine.llm.generate(
            [{"prompt_token_ids": inputs.input_ids, "multi_modal_data": {"image": [image]}}],
            params,
            use_tqdm=False,
        )[0]
        end = inputs.input_ids.index(engine.tokenizer.convert_tokens_to_ids("</img>"))
        tail = inputs.input_ids[end + 1 :]
        ours = torch.tensor(
            [out.prompt_logprobs[end + 1 + k][t].logprob for k, t in enumerate(tail)],
            dtype=torch.float64,
        )
        reference = policy_logprobs(model, inputs.input_ids[: end + 1], tail, inputs.pixel_values)
        assert (ours - reference).abs().max() <= MAX_ABS
        tail_logprobs.append(ours)
    assert (tail_logprobs[0] - tail_logprobs[1]).abs().max() > 1e-3


def test_vllm_expands_image_markers_like_policy(setup):
    engine = setup["engine"]
    from vllm import SamplingParams

    images = [synthetic_image(900, 420, 3), synthetic_image(300, 300, 4)]
    question = "Compare the two images."
    marked = build_chat_text([{"role": "user", "content": f"{IMAGE_MARKER}\n" * 2 + question}])
    out = engine.llm.generate(
        [{"prompt": marked, "multi_modal_data": {"image": images}}],
        SamplingParams(max_tokens=1),
        use_tqdm=False,
    )[0]
    expected = engine.processor.process(question, images, "direct")
    assert list(out.prompt_token_ids) == expected.input_ids
    context_id = engine.tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    count = sum(1 for t in out.prompt_token_ids if t == context_id)
    assert expected.tiles_per_image[0] > 1
    assert count == sum(expected.tiles_per_image) * engine.hf_config.num_image_token


def test_bad_inputs_fail_alone(setup):
    engine, root = setup["engine"], setup["root"]
    (root / "broken.png").write_text("not a png")
    requests = [
        RolloutRequest("fine", "What is 2 + 2?", (), "direct"),
        RolloutRequest("missing", "Describe.", (str(root / "absent.png"),)),
        RolloutRequest("unreadable", "Describe.", (str(root / "broken.png"),)),
        RolloutRequest("empty", ""),
        RolloutRequest("too-long", "word " * 6000),
    ]
    result = engine.generate(requests, SamplingSettings(n=2, max_tokens=8, seed=0))
    assert {c.prompt_id for c in result.completions} == {"fine"}
    assert len(result.completions) == 2
    failed = {f.prompt_id: f.message for f in result.failures}
    assert set(failed) == {"missing", "unreadable", "empty", "too-long"}
    assert "absent.png" in failed["missing"] and "broken.png" in failed["unreadable"]


def test_completion_records(setup):
    engine = setup["engine"]
    sampling = SamplingSettings(n=3, max_tokens=5, seed=7, temperature=1.0)
    result = engine.generate([RolloutRequest("rec", "Count to three.")], sampling)
    assert [c.sample_index for c in result.completions] == [0, 1, 2]
    for c in result.completions:
        assert len(c.token_ids) == len(c.logprobs) <= 5
        assert c.finish_reason in ("stop", "length")
        assert all(lp <= 0 for lp in c.logprobs)
        assert c.weight_version == engine.weight_version
    again = engine.generate([RolloutRequest("rec", "Count to three.")], sampling)
    assert [c.token_ids for c in again.completions] == [c.token_ids for c in result.completions]


def test_completion_text_is_vllms_own_detokenization(setup):
    """The engine asks vLLM for tokens only and decodes each completion once: the text is
    what vLLM's incremental detokenizer writes for the same sampled tokens, also where the
    last tokens leave a character unfinished (a whole decode writes U+FFFD there)."""
    engine = setup["engine"]
    sampling = SamplingSettings(n=32, max_tokens=48, seed=5, temperature=1.5)
    requests = [r for r in setup["requests"] if not r.images][:3]
    ours = engine.generate(requests, sampling).completions
    prompts = [{"prompt_token_ids": list(c.prompt_token_ids)} for c in ours[::32]]
    params = [_detokenizing(engine.sampling_params(sampling, i)) for i in range(len(prompts))]
    outputs = engine.llm.generate(prompts, params, use_tqdm=False)
    theirs = [s for o in outputs for s in sorted(o.outputs, key=lambda s: s.index)]
    assert [tuple(s.token_ids) for s in theirs] == [c.token_ids for c in ours]
    assert [s.text for s in theirs] == [c.text for c in ours]
    whole = engine.tokenizer.batch_decode(
        [list(c.token_ids) for c in ours], skip_special_tokens=True
    )
    assert any(w != c.text for w, c in zip(whole, ours)), "no unfinished character was sampled"


def _detokenizing(params):
    """The same SamplingParams with vLLM's own detokenization on."""
    params = params.clone()
    params.detokenize = True
    params.skip_special_tokens = True
    return params


def test_prompt_ids_given_by_the_caller_generate_what_the_engine_would(setup):
    """The RL driver tokenises once and sends the ids (RolloutRequest.prompt_token_ids): the
    engine generates from exactly those ids, the same completions as from its own pass."""
    from dataclasses import replace

    from policy.processor import SAILVLProcessor

    engine = setup["engine"]
    processor = SAILVLProcessor(engine.tokenizer, engine.hf_config)
    sampling = SamplingSettings(n=2, max_tokens=6, seed=3, temperature=1.0)
    requests = [r for r in setup["requests"] if r.images][:2] + setup["requests"][:1]
    # the learner's ids (policy.processor, pixels included), as rl.loop.prompts.PromptBuilder sends
    learner_ids = [
        tuple(processor.process(r.prompt, list(r.images), r.mode).input_ids) for r in requests
    ]
    given = [replace(r, prompt_token_ids=ids) for r, ids in zip(requests, learner_ids)]
    own, sent = engine.generate(requests, sampling), engine.generate(given, sampling)
    assert not own.failures and not sent.failures
    for a, b, r in zip(own.completions[::2], sent.completions[::2], given):
        assert b.prompt_token_ids == r.prompt_token_ids == a.prompt_token_ids
    assert [c.token_ids for c in sent.completions] == [c.token_ids for c in own.completions]


def test_language_model_only_update(setup):
    engine, model, requests = setup["engine"], setup["model"], setup["requests"]
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.startswith("language_model."):
                param.add_(torch.randn_like(param) * 0.01)
    # In-memory names (MoE experts fused), language model only: a frozen vision tower.
    trainable = [
        (n, p.detach()) for n, p in model.named_parameters() if n.startswith("language_model.")
    ]
    _push(setup, trainable)
    _assert_parity(run_parity(engine, model, requests, PARITY_SAMPLING))


def test_weight_update_errors_are_clear_and_never_silent(setup):
    engine, model = setup["engine"], setup["model"]
    with pytest.raises(ValueError, match="greater than"):
        engine.update_weights([], version=engine.weight_version)
    version = engine.weight_version
    with pytest.raises(UnknownWeightError, match="not_a_weight"):
        engine.update_weights([[("language_model.not_a_weight", torch.zeros(1))]], version + 1)
    assert engine.weight_version == version
    few = setup["requests"][:2]
    report = run_parity(engine, model, few, SamplingSettings(max_tokens=16, seed=3))
    assert report.max_abs_diff <= MAX_ABS
    # A failure after some buckets were loaded leaves mixed weights: generation is refused.
    good = [("language_model.model.norm.weight", model.language_model.model.norm.weight * 2)]
    with pytest.raises(UnknownWeightError):
        engine.update_weights([good, [("bogus", torch.zeros(1))]], version + 1)
    with pytest.raises(RuntimeError, match="failed part-way"):
        engine.generate(few, SamplingSettings(max_tokens=4))
    _push(setup, checkpoint_tensors(model))
    report = run_parity(engine, model, few, SamplingSettings(max_tokens=16, seed=3))
    assert report.max_abs_diff <= MAX_ABS


def _broadcast(engine, buckets_for_rounds):
    """Learner rank 0 in a thread: open a gloo group with ``engine`` and send one update per
    entry of ``buckets_for_rounds``; the engine receives each. Returns the engine's results
    (stats or exception) and the sender's."""
    import threading

    from rl.cluster.topology import free_port
    from rollout.broadcast import Channel, send_stream

    port = free_port()
    sent: list = []

    def sender() -> None:
        channel = Channel("gloo", "127.0.0.1", port, 0, 2, timeout_s=120)
        try:
            for buckets in buckets_for_rounds:
                try:
                    sent.append(send_stream(channel, buckets))
                except Exception as err:  # noqa: BLE001 - reported to the test
                    sent.append(err)
        finally:
            channel.close()

    thread = threading.Thread(target=sender)
    thread.start()
    engine.open_weight_channel("gloo", "127.0.0.1", port, rank_offset=1, world_size=2)
    received = []
    for _ in buckets_for_rounds:
        try:
            received.append(engine.receive_weights(engine.weight_version + 1))
        except Exception as err:  # noqa: BLE001 - reported to the test
            received.append(err)
    thread.join(120)
    assert not thread.is_alive(), "the sender hung"
    engine.llm.collective_rpc("shutdown_weight_transfer_engine")
    return received, sent


def test_broadcast_update_keeps_parity_and_errors_never_hang(setup):
    engine, model, requests = setup["engine"], setup["model"], setup["requests"]
    perturbed = copy.deepcopy(model)
    perturb_(perturbed, scale=0.05, seed=7)
    good = list(weight_buckets(checkpoint_tensors(perturbed), 1 << 20))
    # The bad name shares a bucket with good weights (MoE experts on tiny-moe): nothing of
    # that bucket may load, nor may expert layers be repacked as if it had.
    i = next((i for i, b in enumerate(good) if any(".experts." in n for n, _ in b)), 1)
    bad = [*good[i], ("language_model.not_a_weight", torch.zeros(1))]
    bogus = [*good[:i], bad, *good[i + 1 :]]
    received, sent = _broadcast(engine, [good, bogus, good])

    stats = received[0]
    assert stats.num_buckets == len(good) > 1 and stats.num_bytes == sent[0].num_bytes
    assert stats.num_tensors == sum(len(b) for b in good)
    # A bad name fails that update on the engine side only: the sender finished its stream.
    assert isinstance(received[1], UnknownWeightError) and "not_a_weight" in str(received[1])
    assert sent[1].num_buckets == len(bogus)
    assert received[2].version == engine.weight_version == stats.version + 1  # no skip
    result = engine.generate(requests, PARITY_SAMPLING)
    _assert_parity(compare(perturbed, engine.processor, requests, result.completions))
    assert compare(model, engine.processor, requests, result.completions).max_abs_diff > 1e-2
    _push(setup, checkpoint_tensors(model))  # back to the shared fixture's weights


def test_image_tokens_are_never_sampled(setup):
    if setup["preset"] != "tiny":
        pytest.skip("sampling mask is model-independent; checked on the dense model")
    engine, model = setup["engine"], setup["model"]
    vocab = engine.tokenizer.get_vocab()
    banned = [vocab[t] for t in ("<IMG_CONTEXT>", "<img>", "</img>")]
    # A head whose only non-zero rows are the image tokens (+/- along hidden dim 0): the raw
    # distribution then puts nearly all mass on them.
    head = torch.zeros_like(model.language_model.lm_head.weight)
    head[banned[0], 0], head[banned[2], 0] = 200.0, -200.0
    _push(setup, [("language_model.lm_head.weight", head)])
    result = engine.generate(
        [RolloutRequest("ban", "Say something.")], SamplingSettings(n=4, max_tokens=16, seed=0)
    )
    tokens = [t for c in result.completions for t in c.token_ids]
    logprobs = [lp for c in result.completions for lp in c.logprobs]
    assert tokens and not set(tokens) & set(banned)
    assert sum(logprobs) / len(logprobs) < -5  # the ban, not the model, kept them out
    _push(setup, [("language_model.lm_head.weight", model.language_model.lm_head.weight.detach())])


def test_sleep_needs_cuda(setup):
    engine = setup["engine"]
    with pytest.raises(RuntimeError, match="enable_sleep_mode"):
        engine.sleep()
    with pytest.raises(RuntimeError, match="sleep mode is not available"):
        RolloutEngine(RolloutConfig(model=engine.config.model, enable_sleep_mode=True))


def test_cli_generate_writes_completions_and_reports_bad_prompts(tmp_path):
    import json
    import subprocess
    import sys

    path = init_checkpoint("tiny", tmp_path / "ckpt")
    synthetic_image(500, 300, 5).save(tmp_path / "pic.png")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(
        '{"id": "t", "prompt": "What is 3 + 4?", "mode": "direct"}\n'
        '{"id": "i", "prompt": "Describe the picture.", "images": ["pic.png"]}\n'
        '{"id": "m", "prompt": "Describe.", "images": ["gone.png"]}\n'
    )
    out = tmp_path / "out.jsonl"
    cmd = [
        os.path.join(os.path.dirname(sys.executable), "sailrl"),
        "rollout",
        "generate",
        "--model",
        str(path),
        "--prompts",
        str(prompts),
        "--n",
        "2",
        "--max-tokens",
        "6",
        "--out",
        str(out),
    ]
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="0")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "gone.png" in proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted((r["prompt_id"], r["sample_index"]) for r in records) == [
        ("i", 0),
        ("i", 1),
        ("t", 0),
        ("t", 1),
    ]
    assert all(len(r["token_ids"]) == len(r["logprobs"]) for r in records)
