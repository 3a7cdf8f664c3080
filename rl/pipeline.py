"""The Thinking recipe as one command:

    LongCoT SFT -> [difficulty filter] -> RLVR -> rejection sampling -> Think-Fusion SFT
    -> RL with mixed rewards -> report

    sailrl pipeline --config configs/<recipe>.yaml [dotted.key=value ...]

Each stage runs as its own ``sailrl`` process (a clean vLLM / DeepSpeed / Ray state per
stage) inside ``<run>/<stage>/`` and starts from the previous stage's checkpoint. A finished
stage leaves ``DONE.json`` (its checkpoint and held-out numbers) and is skipped on the next
run; an unfinished one resumes from its own last checkpoint (``--resume auto``). Nothing a
finished stage wrote is touched again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from policy.learner_config import LearnerConfig
from rewards import RewardsConfig, RewardSetConfig
from rl.algos import AlgoConfig
from rl.checkpoint import CheckpointManager
from rl.config import ConfigError, load_config, save_yaml, to_dict
from rl.experiment import LoopConfig, ModelSource, RunConfig
from rl.tasks import TaskConfig
from rl.topology import RayConfig
from rollout.config import RolloutConfig
from sft.config import SFTConfig

log = logging.getLogger(__name__)

STAGES = ("longcot", "filter", "rlvr", "sample", "fusion", "rl_mixed")
_DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "RANK", "LOCAL_RANK", "WORLD_SIZE")


@dataclass
class PipelineData:
    """Data files (policy.data schema), or ``synthetic`` to generate the demo tasks."""

    synthetic: TaskConfig | None = None
    longcot: str | None = None  # thinking SFT samples (response = <think>..</think> answer)
    direct: str | None = None  # direct-answer SFT samples for Think-Fusion
    rl: str | None = None  # RLVR prompts
    rl_mixed: str | None = None  # prompts of the last stage (default: rl)
    eval: str | None = None  # held-out prompts evaluated after every stage


@dataclass
class SFTStage:
    sft: SFTConfig = field(default_factory=SFTConfig)
    learner: LearnerConfig = field(default_factory=lambda: LearnerConfig(zero_stage=2))


@dataclass
class RLStage:
    rl: LoopConfig = field(default_factory=LoopConfig)
    algo: AlgoConfig | None = None  # None: DAPO for dense models, GSPO for MoE (the report)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    rewards: RewardsConfig | None = None  # None: the stage's default (see _rewards)


@dataclass
class FilterStage:
    enabled: bool = False
    k: int = 4
    reasoning_domains: list[str] = field(default_factory=lambda: ["math"])


@dataclass
class SampleStage:
    n: int = 4  # samples per prompt
    keep: int = 1  # traces kept per prompt
    temperature: float = 1.0
    max_tokens: int = 256


@dataclass
class EvalStage:
    modes: list[str] = field(default_factory=lambda: ["think", "direct"])
    k: int = 1
    temperature: float = 0.0
    max_tokens: int = 256
    max_prompts: int = 256
    # pass@1 and pass@<pass_k> after every stage from pass_n (default pass_k) samples per
    # prompt at pass_temperature (unbiased estimator); 0: off.
    pass_k: int = 0
    pass_n: int | None = None
    pass_temperature: float = 1.0
    pass_modes: list[str] | None = None  # modes of the pass@k samples (None: `modes`)
    # Held-out accuracy every `every` RL steps in both RL stages (the report's curves), with
    # these eval settings (think only in rlvr, whose LongCoT model does not answer directly);
    # 0: off (a stage's own rl.eval_every still applies).
    every: int = 0
    show_samples: int = 3  # completions per RL stage and mode shown before/after in report.md

    def __post_init__(self) -> None:
        if not self.modes or not set(self.modes) <= {"think", "direct"}:
            raise ValueError(f"eval.modes: a non-empty list of think/direct, got {self.modes}")
        if self.pass_modes is not None and not set(self.pass_modes) <= set(self.modes):
            raise ValueError(f"eval.pass_modes: {self.pass_modes} must be among eval.modes")
        for name in ("pass_k", "every", "show_samples"):
            if getattr(self, name) < 0:
                raise ValueError(f"eval.{name}: must be >= 0, got {getattr(self, name)}")
        if self.pass_n is not None and self.pass_n < max(1, self.pass_k):
            raise ValueError(
                f"eval.pass_n: must be >= eval.pass_k ({self.pass_k}), got {self.pass_n}"
            )
        if self.every and self.k > 1 and self.temperature == 0:
            raise ValueError("eval.every with eval.k > 1 needs eval.temperature > 0")
        if self.pass_k and not self.pass_temperature > 0:
            raise ValueError(f"eval.pass_temperature: must be > 0, got {self.pass_temperature}")


@dataclass
class PipelineConfig:
    data: PipelineData
    run: RunConfig = field(default_factory=lambda: RunConfig(name="pipeline"))
    model: ModelSource = field(default_factory=lambda: ModelSource(preset="tiny-moe"))
    longcot: SFTStage = field(default_factory=SFTStage)
    filter: FilterStage = field(default_factory=FilterStage)
    rlvr: RLStage = field(default_factory=RLStage)
    sample: SampleStage = field(default_factory=SampleStage)
    fusion: SFTStage = field(
        default_factory=lambda: SFTStage(sft=SFTConfig(mode="fusion", cot_fraction=0.1))
    )
    rl_mixed: RLStage = field(default_factory=RLStage)
    eval: EvalStage = field(default_factory=EvalStage)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    ray: RayConfig = field(default_factory=RayConfig)


def load_pipeline(path: str | Path | None, overrides: list[str] = ()) -> PipelineConfig:
    return load_config(PipelineConfig, path, list(overrides))


def _rewards(stage: str, given: RewardsConfig | None) -> RewardsConfig:
    """RLVR: binary answer + format; mixed: answer, format and (with a judge) think quality,
    gated as in SAIL-RL; without a judge answer + format with more weight on format."""
    if given is not None:
        return given
    if stage == "rlvr":
        return RewardsConfig(
            sets={"default": RewardSetConfig(weights={"answer": 0.9, "format": 0.1})}
        )
    return RewardsConfig(sets={"default": RewardSetConfig(weights={"answer": 0.8, "format": 0.2})})


class Pipeline:
    """Runs the stages in order; see the module docstring for skip/resume rules."""

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self.root = cfg.run.path
        self.root.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, self.root / "config.yaml")

    # -- helpers ---------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        return self.root / stage

    def done(self, stage: str) -> dict[str, Any] | None:
        marker = self.stage_dir(stage) / "DONE.json"
        return json.loads(marker.read_text()) if marker.is_file() else None

    def _finish(self, stage: str, info: dict[str, Any]) -> dict[str, Any]:
        tmp = self.stage_dir(stage) / "DONE.json.tmp"
        tmp.write_text(json.dumps(info, indent=1))
        tmp.replace(self.stage_dir(stage) / "DONE.json")
        return info

    def _sailrl(self, stage: str, *args: str) -> None:
        """One ``sailrl`` command as a child process; its output goes to <stage>/log.txt."""
        log_path = self.stage_dir(stage) / "log.txt"
        cmd = [sys.executable, "-m", "rl.cli", *args]
        log.info("[%s] %s", stage, " ".join(cmd))
        # Each stage is its own torch.distributed world: never inherit the caller's rendezvous.
        env = {k: v for k, v in os.environ.items() if k not in _DIST_VARS}
        with open(log_path, "a") as out:
            code = subprocess.call(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        if code != 0:
            tail = log_path.read_text().splitlines()[-15:]
            raise RuntimeError(
                f"stage {stage!r} failed (exit {code}); its log is {log_path}:\n"
                + "\n".join(tail)
                + "\nFix the cause and rerun the same command: finished stages are kept."
            )

    def _eval(self, stage: str, model: str) -> dict[str, float]:
        if not self.data["eval"]:
            return {}
        ev = self.cfg.eval
        out = self.stage_dir(stage) / "eval.json"
        records = self.stage_dir(stage) / "eval_records.json"
        pass_args = ["--pass-k", str(ev.pass_k), "--pass-n", str(ev.pass_n or ev.pass_k),
                     "--pass-temperature", str(ev.pass_temperature),
                     "--pass-modes", *(ev.pass_modes or ev.modes)] if ev.pass_k else []  # fmt: skip
        self._sailrl(
            stage, "eval", "--model", model, "--data", self.data["eval"],
            "--k", str(ev.k), "--modes", *ev.modes, "--temperature", str(ev.temperature),
            "--max-tokens", str(ev.max_tokens), "--max-prompts", str(ev.max_prompts),
            *pass_args, *self._engine_args(), "--out", str(out), "--records", str(records),
        )  # fmt: skip
        return json.loads(out.read_text())

    def _engine_args(self) -> list[str]:
        r = self.cfg.rollout
        args = ["--dtype", r.dtype]
        args += ["--kv-cache-gib", str(r.kv_cache_gib)] if r.kv_cache_gib is not None else []
        return args + (["--max-model-len", str(r.max_model_len)] if r.max_model_len else [])

    # -- stages ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        self.data = self._prepare_data()
        model = self.cfg.model.prepare(self.root)
        results: dict[str, Any] = {"initial": {"model": model}}
        for stage in STAGES:
            if stage == "filter" and not self.cfg.filter.enabled:
                continue
            info = self.done(stage)
            if info is None:
                self.stage_dir(stage).mkdir(parents=True, exist_ok=True)
                start = time.time()
                info = getattr(self, f"_run_{stage}")(model)
                info["seconds"] = round(time.time() - start, 1)
                if "model" in info:
                    info["eval"] = self._eval(stage, info["model"])
                    records = self.stage_dir(stage) / "eval_records.json"
                    if records.is_file():
                        info["eval_records"] = str(records)
                self._finish(stage, info)
            else:
                log.info("stage %s already complete: skipped", stage)
            results[stage] = info
            model = info.get("model", model)
            if os.environ.get("SAILRL_STOP_AFTER") == stage:  # for resume tests and debugging
                log.info("SAILRL_STOP_AFTER=%s: stopping", stage)
                return results
        from rl.report import write_report

        write_report(self.root, results, self.cfg.eval.modes, self.cfg.eval.show_samples)
        return results

    def _prepare_data(self) -> dict[str, str | None]:
        d = self.cfg.data
        paths = {k: getattr(d, k) for k in ("longcot", "direct", "rl", "rl_mixed", "eval")}
        if d.synthetic is not None:
            from rl.tasks import ensure_dataset

            target = ensure_dataset(d.synthetic, self.root / "data")
            generated = {"longcot": "sft_think.jsonl", "direct": "sft_direct.jsonl",
                         "rl": "rl.jsonl", "eval": "eval.jsonl"}  # fmt: skip
            for key, name in generated.items():
                paths[key] = paths[key] or str(target / name)
        paths["rl_mixed"] = paths["rl_mixed"] or paths["rl"]
        for key in ("longcot", "direct", "rl"):
            if not paths[key]:
                raise ConfigError(f"data.{key}: name a file (or set data.synthetic)")
        for key, path in paths.items():
            if path and not Path(path).is_file():
                raise ConfigError(f"data.{key}: {path} does not exist")
        return paths

    def _is_moe(self, model: str) -> bool:
        from policy.checkpoint import load_config as load_model_config

        return load_model_config(model).llm_config.architectures[0] == "Qwen3MoeForCausalLM"

    def _train(
        self, stage: str, command: str, model: str, sections: dict[str, Any]
    ) -> dict[str, Any]:
        """Run ``sailrl <command>`` (sft or rl) on a stage YAML built from ``sections``."""
        run_dir = self.stage_dir(stage) / "run"
        spec = {
            "model": {"path": model},
            "run": {"name": stage, "dir": str(run_dir), "seed": self.cfg.run.seed},
            **sections,
        }
        path = self.stage_dir(stage) / "stage.yaml"
        save_yaml(spec, path)
        self._sailrl(stage, command, "--config", str(path), "--resume", "auto")
        latest = CheckpointManager(run_dir / "checkpoints").latest()
        if latest is None:
            raise RuntimeError(f"stage {stage!r} finished without a checkpoint in {run_dir}")
        return {"model": str(latest), "run": str(run_dir)}

    def _run_sft(self, stage: str, model: str, files: list[str]) -> dict[str, Any]:
        st: SFTStage = getattr(self.cfg, stage)
        sections = {
            "sft": {**to_dict(st.sft), "train_files": files},
            "learner": to_dict(st.learner),
        }
        return self._train(stage, "sft", model, sections)

    def _run_rl(self, stage: str, model: str, data: str) -> dict[str, Any]:
        st: RLStage = getattr(self.cfg, stage)
        algo = st.algo or AlgoConfig(loss="gspo" if self._is_moe(model) else "dapo")
        loop = self._curve_loop(stage, st.rl)
        sections = {
            # The pipeline evaluates every stage's result itself; in-loop eval only on request.
            "data": {"train": data, "eval": self.data["eval"] if loop.eval_every else None},
            "rl": to_dict(loop),
            "algo": to_dict(algo),
            "learner": to_dict(st.learner),
            "rollout": to_dict(replace(self.cfg.rollout, model="")),
            "rewards": to_dict(_rewards(stage, st.rewards)),
            "ray": to_dict(self.cfg.ray),
        }
        return {**self._train(stage, "rl", model, sections), "algo": algo.loss.name}

    def _curve_loop(self, stage: str, loop: LoopConfig) -> LoopConfig:
        """The stage's loop with the held-out curve of ``eval.every`` (unless the stage sets
        its own ``rl.eval_every``): the pipeline's eval prompts, samples and temperature."""
        ev = self.cfg.eval
        if not ev.every or loop.eval_every or not self.data["eval"]:
            return loop
        modes = [m for m in ev.modes if stage != "rlvr" or m == "think"] or list(ev.modes)
        return replace(
            loop, eval_every=ev.every, eval_max_prompts=ev.max_prompts, eval_modes=modes,
            eval_samples=ev.k, eval_temperature=ev.temperature,
        )  # fmt: skip

    def _run_longcot(self, model: str) -> dict[str, Any]:
        return self._run_sft("longcot", model, [self.data["longcot"]])

    def _run_filter(self, model: str) -> dict[str, Any]:
        f = self.cfg.filter
        out = self.stage_dir("filter") / "rl_filtered.jsonl"
        self._sailrl(
            "filter", "filter", "--model", model, "--data", self.data["rl"], "--k", str(f.k),
            "--reasoning-domains", *f.reasoning_domains, "--out", str(out),
            "--max-tokens", str(self.cfg.sample.max_tokens), *self._engine_args(),
        )  # fmt: skip
        return {"data": str(out)}

    def _rl_data(self) -> str:
        """RLVR prompts: the difficulty-filtered ones when that stage ran."""
        filtered = self.done("filter")
        return filtered["data"] if filtered else self.data["rl"]

    def _run_rlvr(self, model: str) -> dict[str, Any]:
        return self._run_rl("rlvr", model, self._rl_data())

    def _run_sample(self, model: str) -> dict[str, Any]:
        s = self.cfg.sample
        out = self.stage_dir("sample") / "cot.jsonl"
        self._sailrl(
            "sample", "sample", "--model", model, "--data", self._rl_data(), "--n", str(s.n),
            "--keep", str(s.keep), "--temperature", str(s.temperature),
            "--max-tokens", str(s.max_tokens), *self._engine_args(), "--out", str(out),
        )  # fmt: skip
        traces = sum(1 for line in out.read_text().splitlines() if line.strip())
        if traces == 0:
            log.warning(
                "rejection sampling kept no trace (the RLVR model solved no prompt in %d "
                "samples); Think-Fusion falls back to the LongCoT data for its CoT share",
                s.n,
            )
        return {"data": str(out), "traces": traces}

    def _run_fusion(self, model: str) -> dict[str, Any]:
        sampled = self.done("sample")
        cot = sampled["data"] if sampled["traces"] else self.data["longcot"]
        return self._run_sft("fusion", model, [self.data["direct"], cot])

    def _run_rl_mixed(self, model: str) -> dict[str, Any]:
        return self._run_rl("rl_mixed", model, self.data["rl_mixed"])
