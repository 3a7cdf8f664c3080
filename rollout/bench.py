"""``sailrl bench rollout``: decode throughput of the same requests through RolloutEngine,
plain ``vllm.LLM`` (no sailrl wrapper) and HF ``generate`` of policy/'s model, and weight-update
seconds per GB, for the ``tiny`` preset and a ~100M-parameter model built on the spot.

Tokens/s counts generated tokens only (every sample, all prompts) over wall time of one
generate call after a warm-up call. Run on an idle machine; report which model and machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

MODELS = ("tiny", "100m")
REPEATS = 2  # timed runs per system; the best is reported (2 shared cores are noisy)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--models",
        nargs="+",
        default=list(MODELS),
        choices=MODELS,
        help="which model sizes to run (default: both)",
    )
    parser.add_argument("--prompts", type=int, default=8, help="requests per batch")
    parser.add_argument("--n", type=int, default=4, help="samples per request")
    parser.add_argument("--max-tokens", type=int, default=64, help="tokens per sample")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--skip-hf", action="store_true", help="leave out HF generate")


def run(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    import torch

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1m": os.getloadavg()[0],
            "cuda": torch.cuda.is_available(),
        },
        "settings": {
            "prompts": args.prompts,
            "n": args.n,
            "max_tokens": args.max_tokens,
            "dtype": args.dtype,
        },
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.models:
            path = _build_model(name, Path(scratch) / name)
            results[name] = _bench_model(path, args)
    return results


def _build_model(name: str, out: Path) -> Path:
    from policy.checkpoint import init_checkpoint

    # "100m" is the ~106M "small" preset: tiny vision tower, 1024-wide 8-layer Qwen3.
    return init_checkpoint("small" if name == "100m" else name, out)


def _prepared(engine, requests):
    from rollout.prompts import prepare

    return [prepare(r, engine.processor, engine.max_model_len) for r in requests]


def _requests(count: int):
    from rollout.types import RolloutRequest

    topics = [
        "triangles",
        "prime numbers",
        "fractions",
        "circles",
        "apples",
        "angles",
        "squares",
        "ratios",
        "remainders",
        "perimeters",
    ]
    return [
        RolloutRequest(
            f"p{i}", f"Explain {topics[i % len(topics)]} step by step, case {i}.", (), "think"
        )
        for i in range(count)
    ]


def _bench_model(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Each system runs in a fresh process: vLLM binds and caps torch threads for the
    rest of a process's life, which would slow whatever runs after it."""
    settings = {
        "prompts": args.prompts,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "dtype": args.dtype,
    }
    systems = ["engine", "plain_vllm"] + ([] if args.skip_hf else ["hf_generate"])
    out: dict[str, Any] = {}
    for system in systems:
        out.update(_in_subprocess(system, str(path), settings))
    return out


def _in_subprocess(system: str, path: str, settings: dict[str, Any]) -> dict[str, Any]:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_measure, args=(system, path, settings, queue))
    process.start()
    result = queue.get()
    process.join()
    if "error" in result:
        raise RuntimeError(f"benchmark of {system} failed: {result['error']}")
    return result


def _measure(system: str, path: str, settings: dict[str, Any], queue) -> None:
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    args = argparse.Namespace(**settings)
    try:
        queue.put(
            {"engine": _engine, "plain_vllm": _plain_vllm, "hf_generate": _hf}[system](
                Path(path), args
            )
        )
    except Exception as err:  # noqa: BLE001 - reported to the parent, which raises
        queue.put({"error": f"{type(err).__name__}: {err}"})


def _engine(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from policy.checkpoint import checkpoint_tensors, load_checkpoint
    from rollout.config import RolloutConfig
    from rollout.engine import RolloutEngine
    from rollout.parity import weight_buckets
    from rollout.types import SamplingSettings

    requests = _requests(args.prompts)
    sampling = SamplingSettings(
        n=args.n, temperature=1.0, max_tokens=args.max_tokens, seed=0, stop_at_end_of_turn=False
    )
    engine = RolloutEngine(RolloutConfig(model=str(path), dtype=args.dtype, max_model_len=2048))
    engine.generate(requests[:2], sampling)  # warm-up
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = engine.generate(requests, sampling)
        seconds = time.perf_counter() - start
        rates.append(sum(len(c.token_ids) for c in result.completions) / seconds)
    model = load_checkpoint(path, dtype=getattr(torch, args.dtype)).model
    named = list(checkpoint_tensors(model))
    gigabytes = sum(t.numel() * t.element_size() for _, t in named) / 1e9
    timings = [
        engine.update_weights(weight_buckets(named, 256 * 2**20), version=v).seconds for v in (1, 2)
    ]
    broadcast = _broadcast_updates(engine, named, versions=(3, 4))
    engine.shutdown()
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "engine_tokens_per_s": max(rates),
        "weight_update_gb": gigabytes,
        "weight_update_s_per_gb": min(timings) / gigabytes,
        "weight_broadcast_gloo_s_per_gb": min(broadcast) / gigabytes,
    }


def _broadcast_updates(engine, named, versions) -> list[float]:
    """Seconds per update when a sender thread (standing in for learner rank 0) broadcasts
    ``named`` over gloo: packing, transfer and loading together."""
    import socket
    import threading

    from rollout.broadcast import Channel, send_stream
    from rollout.parity import weight_buckets

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    def sender() -> None:
        channel = Channel("gloo", "127.0.0.1", port, 0, 2)
        for _ in versions:
            send_stream(channel, weight_buckets(named, 256 * 2**20))
        channel.close()

    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    engine.open_weight_channel("gloo", "127.0.0.1", port, rank_offset=1, world_size=2)
    seconds = [engine.receive_weights(v).seconds for v in versions]
    thread.join()
    return seconds


def _prompt_ids(path: Path, args: argparse.Namespace) -> list[list[int]]:
    from policy.checkpoint import load_config, load_tokenizer
    from policy.processor import SAILVLProcessor
    from rollout.prompts import prepare

    processor = SAILVLProcessor(load_tokenizer(path), load_config(path))
    return [list(prepare(r, processor, 2048).prompt_token_ids) for r in _requests(args.prompts)]


def _plain_vllm(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    import vllm

    from rollout.plugin import register

    register()  # what the installed entry point does in a fresh interpreter
    prompt_ids = _prompt_ids(path, args)
    from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

    llm = vllm.LLM(
        model=str(path),
        dtype=args.dtype,
        max_model_len=2048,
        seed=0,
        enforce_eager=True,
        distributed_executor_backend="uni",
        kv_cache_memory_bytes=2**30,
        limit_mm_per_prompt={"image": 4},
    )
    # The settings RolloutEngine uses, minus its wrapper: sampled-token logprobs, seeds.
    params = [
        vllm.SamplingParams(
            n=args.n, temperature=1.0, max_tokens=args.max_tokens, seed=i * args.n, logprobs=0
        )
        for i in range(len(prompt_ids))
    ]
    prompts = [{"prompt_token_ids": ids} for ids in prompt_ids]
    llm.generate(prompts[:2], params[:2], use_tqdm=False)
    rates = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        outputs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - start
        rates.append(sum(len(o.token_ids) for r in outputs for o in r.outputs) / seconds)
    llm.llm_engine.engine_core.shutdown()
    del llm
    cleanup_dist_env_and_memory()
    return {"plain_vllm_tokens_per_s": max(rates)}


def _hf(path: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from policy.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(path, dtype=getattr(torch, args.dtype))
    prompt_ids = _prompt_ids(path, args)

    tokenizer = checkpoint.tokenizer
    pad = tokenizer.pad_token_id
    width = max(len(ids) for ids in prompt_ids)
    input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in prompt_ids])
    mask = (
        torch.arange(width)[None, :] >= torch.tensor([width - len(i) for i in prompt_ids])[:, None]
    )
    model = checkpoint.model

    def generate():
        with torch.no_grad():
            return model.generate(
                input_ids=input_ids,
                attention_mask=mask.long(),
                do_sample=True,
                temperature=1.0,
                top_p=1.0,
                top_k=0,
                max_new_tokens=args.max_tokens,
                min_new_tokens=args.max_tokens,
                num_return_sequences=args.n,
                pad_token_id=pad,
            )

    torch.manual_seed(0)
    start = time.perf_counter()
    out = generate()
    seconds = time.perf_counter() - start
    tokens = (out.shape[1] - width) * out.shape[0]
    return {"hf_generate_tokens_per_s": tokens / seconds}
