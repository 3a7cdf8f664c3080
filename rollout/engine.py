"""RolloutEngine: SAIL-VL2 sampling with vLLM, and the receiving end of weight sync.

Ray-free: the rl package wraps it in an actor. Typical use::

    engine = RolloutEngine(RolloutConfig(model="runs/ckpt", dtype="float32"))
    result = engine.generate([RolloutRequest("q1", "What is 2+3?")], SamplingSettings(n=4))
    engine.update_weights([bucket1, bucket2], version=1)   # buckets of (policy name, tensor)

or, when learner rank 0 broadcasts (``rollout.broadcast``; NCCL on CUDA, gloo on CPU)::

    engine.open_weight_channel("nccl", host, port, rank_offset=1, world_size=2)
    engine.receive_weights(version=1)   # while rank 0 runs rollout.broadcast.send_stream

Scripts that build an engine need an ``if __name__ == "__main__":`` guard when vLLM runs out
of process (it spawns). ``in_process=True`` (the default) avoids extra processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from policy.vocab import IM_END, IMAGE_TOKENS
from rollout.config import DTYPE_BYTES, RolloutConfig, kv_cache_bytes
from rollout.types import Completion, GenerateResult, RolloutRequest, SamplingSettings
from rollout.weight_names import check_names

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
BANNED_TOKENS = IMAGE_TOKENS
END_OF_TURN = IM_END


@dataclass(frozen=True)
class WeightUpdateStats:
    """What one weight update moved and how long it took."""

    version: int
    num_tensors: int
    num_bytes: int
    num_buckets: int
    seconds: float


def check_checkpoint(path: str | os.PathLike) -> Path:
    """The checkpoint directory, after checking it has a config and a tokenizer."""
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"model directory not found: {root}")
    if not (root / "config.json").is_file():
        raise FileNotFoundError(f"{root} has no config.json: not a SAIL-VL2 checkpoint")
    if not any((root / name).is_file() for name in TOKENIZER_FILES):
        raise FileNotFoundError(
            f"checkpoint {root} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}): "
            "save the tokenizer into the checkpoint directory (policy.checkpoint does)"
        )
    return root


def _set_environment(config: RolloutConfig) -> None:
    """vLLM reads these when the engine starts; they must be set before it does."""
    if config.in_process:
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class RolloutEngine:
    """vLLM engine for one SAIL-VL2 checkpoint: generate, update weights, sleep/wake."""

    def __init__(self, config: RolloutConfig) -> None:
        root = check_checkpoint(config.model)
        _set_environment(config)
        import vllm
        from vllm.platforms import current_platform

        from policy.checkpoint import load_config, load_tokenizer
        from policy.processor import SAILVLProcessor
        from rollout.plugin import WEIGHT_TRANSFER_BACKEND, register

        register()
        self.config = config
        self.is_cuda = current_platform.is_cuda()
        if not self.is_cuda and config.in_process:
            from rollout.cpu_eager import skip_sampler_compile

            skip_sampler_compile()  # no C++ build in the first generate (rollout.cpu_eager)
        if config.enable_sleep_mode and not current_platform.is_sleep_mode_available():
            raise RuntimeError(
                f"enable_sleep_mode=True but vLLM's sleep mode is not available on this "
                f"platform ({current_platform.device_type}); it needs a CUDA GPU. Set "
                "enable_sleep_mode=False (rollout and learner then keep separate memory)."
            )
        hf_config = load_config(root)
        tokenizer = load_tokenizer(root)
        self.processor = SAILVLProcessor(tokenizer, hf_config)
        self.hf_config = hf_config
        self.tokenizer = tokenizer
        kwargs: dict[str, Any] = {}
        if self.is_cuda:
            kwargs["gpu_memory_utilization"] = config.gpu_memory_utilization
        else:
            kwargs["kv_cache_memory_bytes"] = _kv_cache_bytes(config, hf_config.llm_config)
        batched = config.max_num_batched_tokens
        if batched is None and not self.is_cuda:
            model_len = config.max_model_len or hf_config.llm_config.max_position_embeddings
            batched = cpu_batched_tokens(config.max_num_seqs, model_len)
            # Whole prompts per step, never a split prefill (see RolloutConfig)
            kwargs["enable_chunked_prefill"] = False
        if batched is not None:
            kwargs["max_num_batched_tokens"] = batched
        if config.in_process:
            kwargs["distributed_executor_backend"] = "uni"
        self.llm = vllm.LLM(
            model=str(root),
            dtype=config.dtype,
            max_model_len=config.max_model_len,
            max_num_seqs=config.max_num_seqs,
            seed=config.seed,
            enforce_eager=config.enforce_eager,
            enable_prefix_caching=config.enable_prefix_caching,
            enable_sleep_mode=config.enable_sleep_mode,
            limit_mm_per_prompt={"image": config.max_images_per_prompt},
            # Logprobs of the raw model distribution (temperature 1, no top-p): the
            # quantity the learner recomputes for importance ratios.
            logprobs_mode="raw_logprobs",
            weight_transfer_config={"backend": WEIGHT_TRANSFER_BACKEND},
            **kwargs,
        )
        self.max_model_len = self.llm.llm_engine.model_config.max_model_len
        vocab = tokenizer.get_vocab()
        self._end_of_turn_id = vocab.get(END_OF_TURN)
        self._banned = [t for t in BANNED_TOKENS if t in vocab]
        self.weight_version = 0
        self._pending: dict[str, Any] | None = None
        self._partial_update: int | None = None
        self._asleep = False

    # -- sampling -------------------------------------------------------------------------
    def sampling_params(self, sampling: SamplingSettings, request_index: int = 0):
        """vLLM SamplingParams for request number ``request_index`` of a batch."""
        from vllm import SamplingParams

        seed = None if sampling.seed is None else sampling.seed + request_index * sampling.n
        stop_ids = [self._end_of_turn_id] if sampling.stop_at_end_of_turn else []
        return SamplingParams(
            n=sampling.n,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            max_tokens=sampling.max_tokens,
            seed=seed,
            logprobs=0,
            stop_token_ids=[t for t in stop_ids if t is not None],
            # Image tokens can never be sampled: a generated placeholder would break the
            # learner's placeholder/embedding count check.
            bad_words=list(self._banned),
            # The text is decoded once per completion (``generate``), not token by token
            # (vLLM's incremental detokenizer also decodes every logprob's token).
            detokenize=False,
        )

    def generate(
        self, requests: Sequence[RolloutRequest], sampling: SamplingSettings
    ) -> GenerateResult:
        """``sampling.n`` completions per valid request; invalid requests are reported in
        ``failures`` (naming the prompt and file) and do not affect the others."""
        from rollout.prompts import prepare_all

        if self._asleep:
            raise RuntimeError("the rollout engine is asleep: call wake_up() before generate()")
        if self._partial_update is not None:
            raise RuntimeError(
                f"weight update to version {self._partial_update} failed part-way, so the "
                "engine holds a mix of weights: push a complete update before generating"
            )
        ready, failures = prepare_all(list(requests), self.processor, self.max_model_len)
        if not ready:
            return GenerateResult((), tuple(failures))
        params = [self.sampling_params(sampling, index) for index, _ in ready]
        outputs = self.llm.generate(
            [prepared.vllm_input() for _, prepared in ready], params, use_tqdm=False
        )
        version = self.weight_version
        pairs = [
            (prepared, sample)
            for (_, prepared), output in zip(ready, outputs)
            for sample in sorted(output.outputs, key=lambda o: o.index)
        ]
        texts = [
            decode_completion(self.tokenizer, prepared.prompt_token_ids, sample.token_ids)
            for prepared, sample in pairs
        ]
        completions = [
            _completion(prepared, sample, text, version)
            for (prepared, sample), text in zip(pairs, texts)
        ]
        return GenerateResult(tuple(completions), tuple(failures))

    # -- weight sync ----------------------------------------------------------------------
    def begin_weight_update(self, version: int) -> None:
        """Open a weight update that will carry ``version`` (must exceed the current one)."""
        if self._pending is not None:
            raise RuntimeError("a weight update is already open: finish_weight_update() first")
        if not isinstance(version, int) or version <= self.weight_version:
            raise ValueError(
                f"weight version {version!r} must be an int greater than the current "
                f"version {self.weight_version}"
            )
        self.llm.collective_rpc("start_weight_update")
        self._pending = {
            "version": version,
            "tensors": 0,
            "bytes": 0,
            "buckets": 0,
            "start": time.perf_counter(),
        }

    def push_weight_bucket(self, bucket: Sequence[tuple[str, torch.Tensor]]) -> None:
        """Load one bucket of (``policy/`` name, tensor) pairs into the open update."""
        if self._pending is None:
            raise RuntimeError("no weight update is open: call begin_weight_update(version)")
        bucket = list(bucket)
        try:
            check_names([name for name, _ in bucket], self.hf_config)
        except KeyError:
            self._abort_update()
            raise
        self.llm.collective_rpc("update_weights", args=({"named_tensors": bucket},))
        self._pending["tensors"] += len(bucket)
        self._pending["bytes"] += sum(t.numel() * t.element_size() for _, t in bucket)
        self._pending["buckets"] += 1

    def finish_weight_update(self) -> WeightUpdateStats:
        """Apply the update, reset the prefix and encoder caches, bump the version."""
        if self._pending is None:
            raise RuntimeError("no weight update is open: call begin_weight_update(version)")
        self.llm.collective_rpc("finish_weight_update")
        self._reset_caches()
        pending, self._pending = self._pending, None
        self._partial_update = None
        self.weight_version = pending["version"]
        return WeightUpdateStats(
            version=pending["version"],
            num_tensors=pending["tensors"],
            num_bytes=pending["bytes"],
            num_buckets=pending["buckets"],
            seconds=time.perf_counter() - pending["start"],
        )

    def update_weights(
        self, buckets: Iterable[Sequence[tuple[str, torch.Tensor]]], version: int
    ) -> WeightUpdateStats:
        """One whole update: every bucket of (``policy/`` name, tensor), then ``version``."""
        self.begin_weight_update(version)
        for bucket in buckets:
            self.push_weight_bucket(bucket)
        return self.finish_weight_update()

    @property
    def num_workers(self) -> int:
        """vLLM workers of this engine: each takes one rank of the broadcast group."""
        return self.llm.llm_engine.vllm_config.parallel_config.world_size

    def open_weight_channel(
        self,
        transport: str,
        master_address: str,
        master_port: int,
        rank_offset: int,
        world_size: int,
        timeout_s: float = 600.0,
    ) -> None:
        """Join the broadcast group that learner rank 0 hosts at ``master_address:port``
        (ranks ``rank_offset`` .. ``rank_offset + num_workers - 1``). Blocks until every
        member has joined, so the sender must open its side concurrently."""
        info = {
            "transport": transport,
            "master_address": master_address,
            "master_port": master_port,
            "rank_offset": rank_offset,
            "world_size": world_size,
            "timeout_s": timeout_s,
        }
        self.llm.collective_rpc("init_weight_transfer_engine", args=(info,))

    def receive_weights(self, version: int) -> WeightUpdateStats:
        """Receive one whole update broadcast by learner rank 0 (which must be sending it
        concurrently with ``rollout.broadcast.send_stream``), then bump to ``version``.

        If the update fails part-way (a bad name, the sender aborting) the engine refuses to
        generate until a complete update arrives, as with :meth:`update_weights`."""
        from rollout.weight_transfer import last_stream

        self.begin_weight_update(version)
        try:
            self.llm.collective_rpc("update_weights", args=({},))
        except BaseException:
            # The worker has already closed its session and restored every layer's format.
            self._partial_update = version
            self._pending = None
            self._reset_caches()
            raise
        received = self.llm.collective_rpc(last_stream)[0]
        return replace(
            self.finish_weight_update(),
            num_tensors=received.num_tensors,
            num_bytes=received.num_bytes,
            num_buckets=received.num_buckets,
        )

    def _abort_update(self) -> None:
        # Finishing restores every layer that received nothing to its previous tensors; if
        # earlier buckets were loaded the weights are now a mix, so generation is refused
        # until a complete update arrives.
        if self._pending and self._pending["buckets"]:
            self._partial_update = self._pending["version"]
        self.llm.collective_rpc("finish_weight_update")
        self._reset_caches()
        self._pending = None

    def _reset_caches(self) -> None:
        # Cached KV blocks and vision embeddings were computed with the old weights.
        self.llm.reset_prefix_cache()
        self.llm.llm_engine.reset_encoder_cache()

    def shutdown(self) -> None:
        """Stop vLLM and release its process-global state, so that another engine can start
        in this process (vLLM keeps one parallel setup per process)."""
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        llm = self.__dict__.pop("llm", None)
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown()
        del llm
        cleanup_dist_env_and_memory()

    # -- colocation -----------------------------------------------------------------------
    def sleep(self, level: int = 1) -> None:
        """Free accelerator memory for a colocated learner (CUDA with enable_sleep_mode)."""
        if not self.config.enable_sleep_mode:
            raise RuntimeError(
                "sleep() needs RolloutConfig(enable_sleep_mode=True), which needs a CUDA GPU; "
                "this engine was started without it"
            )
        self.llm.sleep(level=level)
        self._asleep = True

    def wake_up(self) -> None:
        """Re-allocate what sleep() released."""
        if not self.config.enable_sleep_mode:
            raise RuntimeError("wake_up() needs RolloutConfig(enable_sleep_mode=True)")
        self.llm.wake_up()
        self._asleep = False
        self._reset_caches()


_INVALID_PREFIX = "Invalid prefix encountered"  # tokenizers' DecodeStream, on non-monotonic UTF-8


def decode_completion(tokenizer: Any, prompt_ids: Sequence[int], token_ids: Sequence[int]) -> str:
    """A completion's text as vLLM's incremental detokenizer writes it: tokenizers'
    ``DecodeStream`` primed with the prompt (so the first token's spacing is right), special
    tokens skipped, a character left unfinished by the last tokens not written (a whole
    decode would write U+FFFD for it). One pass per completion instead of vLLM's pass per
    token, which also decodes the token of every logprob."""
    from tokenizers.decoders import DecodeStream

    backend = getattr(tokenizer, "_tokenizer", None)  # the Rust tokenizer of a fast one
    if backend is None:
        return tokenizer.decode(list(token_ids), skip_special_tokens=True)
    stream = DecodeStream(ids=list(prompt_ids), skip_special_tokens=True)
    parts = []
    for token in token_ids:
        try:
            piece = stream.step(backend, token)
        except (OverflowError, TypeError):  # an id the tokenizer cannot decode: skipped
            piece = None
        except Exception as err:
            if not str(err).startswith(_INVALID_PREFIX):
                raise
            stream = DecodeStream(skip_special_tokens=True)  # start over, as vLLM does
            piece = stream.step(backend, token)
        if piece:
            parts.append(piece)
    return "".join(parts)


def _completion(prepared, sample, text: str, version: int) -> Completion:
    token_ids = tuple(sample.token_ids)
    logprobs = tuple(
        float(step[token].logprob) for token, step in zip(token_ids, sample.logprobs or [])
    )
    if len(logprobs) != len(token_ids):
        raise RuntimeError(
            f"prompt {prepared.request.prompt_id!r}: vLLM returned {len(logprobs)} logprobs "
            f"for {len(token_ids)} tokens"
        )
    reason = sample.finish_reason
    if reason not in ("stop", "length"):
        raise RuntimeError(f"prompt {prepared.request.prompt_id!r}: vLLM finished with {reason!r}")
    return Completion(
        prompt_id=prepared.request.prompt_id,
        sample_index=sample.index,
        prompt_token_ids=prepared.prompt_token_ids,
        token_ids=token_ids,
        logprobs=logprobs,
        text=text,
        finish_reason=reason,
        weight_version=version,
    )


def cpu_batched_tokens(max_num_seqs: int, model_len: int, budget: int = 16384) -> int:
    """Tokens per engine step on CPU: ``budget``, but at least one whole sequence and one
    token per running sequence. vLLM keeps (tokens x hidden) buffers of this size resident
    (a 64 x 2048 token budget held 512 MiB at 1024 wide for a 106M model); with chunked
    prefill off a step takes whole prompts up to the budget, the rest wait for the next.

    >>> cpu_batched_tokens(64, 2048), cpu_batched_tokens(64, 40960)
    (16384, 40960)
    """
    return max(budget, model_len, max_num_seqs)


def _kv_cache_bytes(config: RolloutConfig, llm: Any) -> int:
    """``config.kv_cache_gib``, or what ``max_num_seqs`` x ``max_model_len`` tokens of this
    language model need (rollout.config.kv_cache_bytes)."""
    if config.kv_cache_gib is not None:
        return int(config.kv_cache_gib * 2**30)
    dtype = config.dtype
    if dtype == "auto":
        dtype = str(getattr(llm, "torch_dtype", None) or getattr(llm, "dtype", None) or "float32")
    dtype_bytes = DTYPE_BYTES.get(dtype.removeprefix("torch."), 4)
    heads = llm.num_attention_heads
    head_dim = getattr(llm, "head_dim", None) or llm.hidden_size // heads
    return kv_cache_bytes(
        config.max_num_seqs,
        config.max_model_len or llm.max_position_embeddings,
        llm.num_hidden_layers,
        getattr(llm, "num_key_value_heads", None) or heads,
        head_dim,
        dtype_bytes,
    )
