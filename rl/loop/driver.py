"""The RL driver: generate -> score -> filter -> advantage -> train -> sync -> eval/save.

Run it with ``sailrl rl --config configs/tiny-rl.yaml [dotted.key=value ...] [--resume auto]``.
It holds actor handles (``rl.loop.handles.Cluster``, from the ``connect`` its caller
passes: ``rl.cluster.session.connect``); weights go learner -> engine without passing
through it.
"""

from __future__ import annotations

import logging
import random
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from rl.algos import BatchFiller
from rl.algos.batching import Group, flat_shaped, group_metrics, train_groups, with_shaped
from rl.algos.rl_loss import RLLoss
from rl.loop.evaluation import evaluate
from rl.loop.handles import ActorFailure, Connect
from rl.loop.probe import parity_probe
from rl.loop.prompts import PromptBuilder, PromptStream
from rl.run.checkpoint import CheckpointManager, read_state
from rl.run.experiment import ExperimentConfig
from rl.run.preflight import preflight_rl
from rl.run.prompt_data import bad_row_counts, write_report
from rl.run.runlog import RunLog
from rollout.types import SamplingSettings

log = logging.getLogger(__name__)


def run_rl(cfg: ExperimentConfig, resume: str | None = None, *, connect: Connect) -> Path:
    """Train; returns the run directory. ``resume``: None, "auto", a checkpoint dir, its
    ``latest`` pointer or a step; ``connect`` starts the actors
    (``rl.cluster.session.connect``). Every checkable mistake fails before any actor starts."""
    plan = preflight_rl(cfg, resume)
    cfg, start = plan.cfg, plan.start
    if resume == "auto" and start is None:
        log.info("--resume auto: no checkpoint under %s yet, starting fresh", cfg.run.path)
    run_dir = cfg.run.path
    if cfg.algo.kl is not None and not cfg.learner.reference:
        # KL needs the frozen starting weights on the learner ranks.
        cfg = replace(cfg, learner=replace(cfg.learner, reference=True))
    random.seed(cfg.run.seed)
    ckpts = CheckpointManager(run_dir / "checkpoints", keep=cfg.rl.keep_checkpoints)
    data = plan.data  # every row and image was checked by the preflight
    write_report(run_dir, train=data.train, eval=data.eval)
    model_dir = cfg.model.prepare(run_dir)
    # The driver's tokenizer (and transformers' import, ~2 s) loads while Ray and the
    # actors start: the driver only waits then.
    pool = ThreadPoolExecutor(1, thread_name_prefix="sailrl-processor")
    processor = pool.submit(_load_processor, model_dir)
    pool.shutdown(wait=False)
    try:
        # Records after the starting step belong to a run that was cut off: drop them.
        with (
            connect(cfg, model_dir) as cluster,
            RunLog(run_dir, cfg, resume_step=plan.start_step) as runlog,
        ):
            _loop(cfg, cluster, ckpts, start, processor, runlog, data)
    except ActorFailure as err:
        if ckpts.latest() is None:
            raise
        hint = " The last checkpoint is intact: rerun with --resume auto to continue from it."
        raise ActorFailure(f"{err}{hint}") from err.__cause__
    return run_dir


def _load_processor(model_dir: str) -> Any:
    from policy.processor import SAILVLProcessor

    return SAILVLProcessor.from_pretrained(model_dir)


def _loop(cfg, cluster, ckpts, start, processor: Future, runlog, data) -> None:
    loop, algo = cfg.rl, cfg.algo
    builder = PromptBuilder(processor.result(), cfg.data.mode)
    state = {"step": 0, "cursor": 0}
    if start is not None:
        state = read_state(start)
        cluster.load(str(start))
        cluster.sync_weights(state["step"], loop.sync_bucket_mb << 20)
        log.info("resumed from %s at step %d", start, state["step"])
    stream = PromptStream(data.train, cfg.run.seed, state["cursor"])
    held_out = data.eval[: loop.eval_max_prompts] if data.eval else []
    bad_rows = bad_row_counts(train=data.train, eval=data.eval)
    gen = _Generator(cfg, cluster, builder, stream)
    loss_fn = RLLoss(algo)
    probe = builder.prompt("probe", stream.examples[0])
    bar = runlog.progress(loop.steps, "rl", initial=state["step"])
    for step in range(state["step"], loop.steps):
        t0 = time.perf_counter()
        kept, metrics = gen.batch(step)  # generate + score + dynamic sampling
        if loop.overlap and step + 1 < loop.steps:
            gen.prefetch(step + 1)  # next step samples while this one trains
        if kept:
            records, _ = train_groups(kept, algo, loop.group_size)
            t = time.perf_counter()
            # old (and reference) logprobs are computed by the learner within the call
            metrics.update(
                {f"train/{k}": v for k, v in cluster.train_step(records, loss_fn).items()}
            )
            metrics["time/train"] = time.perf_counter() - t
            t = time.perf_counter()
            metrics.update(cluster.sync_weights(step + 1, loop.sync_bucket_mb << 20))
            metrics["time/sync"] = time.perf_counter() - t
            if loop.probe_parity:
                metrics.update(parity_probe(cluster, builder, probe, loop))
        else:
            log.warning("step %d: every group had equal rewards; no update", step + 1)
        last = step + 1 == loop.steps
        if held_out and ((loop.eval_every and (step + 1) % loop.eval_every == 0) or last):
            t = time.perf_counter()
            metrics.update(
                evaluate(
                    held_out,
                    loop.eval_modes,
                    builder,
                    cluster.generate,
                    cluster.score_eval,
                    samples=loop.eval_samples,
                    temperature=loop.eval_temperature,
                    max_tokens=loop.max_new_tokens,
                    seed=cfg.run.seed,
                    correctness=cfg.rewards.eval_reward,
                )
            )
            metrics["time/eval"] = time.perf_counter() - t
        if (loop.save_every and (step + 1) % loop.save_every == 0) or last:
            t = time.perf_counter()
            state = {"cursor": gen.cursor(), "reward_mean": metrics.get("reward/mean")}
            ckpts.save(step + 1, lambda d: cluster.save(str(d)), state)
            metrics["time/save"] = time.perf_counter() - t
        metrics["time/step"] = time.perf_counter() - t0
        metrics.update(bad_rows)
        runlog.log(step + 1, metrics)
        # With every group dropped, log what the model wrote anyway (kept: false).
        shown = kept or gen.last_scored
        runlog.write_jsonl("samples.jsonl", _samples(step + 1, shown, loop.log_samples, bool(kept)))
        bar.set_postfix(reward=f"{metrics.get('reward/mean', 0.0):.3f}")
        bar.update(1)
    bar.close()


class _Generator:
    """Generation rounds of one step: sample, score, keep informative groups (DAPO)."""

    def __init__(self, cfg, cluster, builder, stream) -> None:
        self.cfg, self.cluster, self.builder, self.stream = cfg, cluster, builder, stream
        self.sampling = SamplingSettings(
            n=cfg.rl.group_size,
            temperature=cfg.rl.temperature,
            top_p=cfg.rl.top_p,
            max_tokens=cfg.rl.max_new_tokens,
        )
        self.pending = None  # (prompts, refs, cursor before them) of a prefetched round
        self.last_scored: list[Group] = []  # every scored group of the latest step

    def _launch(self, step: int, round_: int, count: int):
        before = self.stream.cursor
        prompts = [
            self.builder.prompt(f"{step}-{round_}-{i}", ex) for i, ex in self.stream.take(count)
        ]
        seed = self.cfg.run.seed * 1_000_003 + step * 101 + round_
        refs = self.cluster.launch_generate(
            [self.builder.request(p) for p in prompts], replace(self.sampling, seed=seed)
        )
        return prompts, refs, before

    def prefetch(self, step: int) -> None:
        self.pending = self._launch(step, 0, self.cfg.rl.prompts_per_step)

    def cursor(self) -> int:
        """Data cursor to checkpoint: prefetched prompts are not yet consumed."""
        return self.pending[2] if self.pending else self.stream.cursor

    def batch(self, step: int) -> tuple[list[Group], dict[str, Any]]:
        loop, algo = self.cfg.rl, self.cfg.algo
        filler = BatchFiller(
            loop.prompts_per_step, loop.group_size, algo.max_extra_rounds, algo.dynamic_sampling
        )
        timings = {"time/generate": 0.0, "time/reward": 0.0, "reward/worker_restarts": 0.0}
        scored: list[Group] = []  # every group of every round: the honest reward numbers
        while filler.wants_more():
            count = loop.prompts_per_step if filler.rounds == 0 else filler.missing
            prompts, refs, _ = self.pending or self._launch(step, filler.rounds, count)
            self.pending = None
            t = time.perf_counter()
            result = self.cluster.collect(refs)
            timings["time/generate"] += time.perf_counter() - t
            for failure in result.failures:
                log.warning("prompt skipped: %s", failure.message)
            t = time.perf_counter()
            groups, stats = _score(self.cluster, self.builder, prompts, result, loop.group_size)
            timings["time/reward"] += time.perf_counter() - t
            timings["reward/worker_restarts"] += stats["worker_restarts"]
            groups = with_shaped(groups, algo, loop.max_new_tokens)  # once, for filter and train
            scored.extend(groups)
            filler.add(groups, flat_shaped(groups))
        report = filler.finish()
        kept = list(report.groups)
        self.last_scored = scored
        metrics = {
            **group_metrics(scored),
            **timings,
            "sampling/rounds": report.rounds,
            "sampling/dropped_groups": report.dropped,
            "sampling/kept_groups": len(kept),
        }
        if kept:  # weight versions behind the learner (0 synchronous, <= 1 with rl.overlap)
            oldest = min(c.weight_version for g in kept for c in g.completions)
            metrics["rollout/staleness"] = step - oldest
        return kept, metrics


def _score(cluster, builder, prompts, result, group_size) -> tuple[list[Group], dict]:
    by_id = {p.prompt_id: p for p in prompts}
    per_prompt: dict[str, list] = {}
    for comp in result.completions:
        per_prompt.setdefault(comp.prompt_id, []).append(comp)
    ordered = [(by_id[pid], comps) for pid, comps in per_prompt.items() if len(comps) == group_size]
    inputs = [builder.reward_input(p, c.text) for p, comps in ordered for c in comps]
    results, stats = cluster.score(inputs)
    groups, i = [], 0
    for p, comps in ordered:
        groups.append(Group(p, tuple(comps), tuple(results[i : i + group_size])))
        i += group_size
    return groups, stats


def _samples(step: int, groups: list[Group], limit: int, kept: bool = True) -> list[dict[str, Any]]:
    rows = []
    for g in groups[:limit]:
        c, r = g.completions[0], g.results[0]
        rows.append(
            {
                "step": step,
                "prompt_id": g.prompt.prompt_id,
                "mode": g.prompt.mode,
                "answer": g.prompt.example.answer,
                "completion": c.text,
                "reward": r.reward,
                "components": r.components,
                "kept": kept,
            }
        )
    return rows
