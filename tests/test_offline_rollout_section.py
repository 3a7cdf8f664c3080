"""The pipeline hands its offline jobs (eval, sample, filter) the whole rollout section, and
the offline CLIs build their engine config from it, explicit flags winning."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rl.cli import build_parser
from rl.cli.data import _config
from rl.config import ConfigError, from_dict
from rl.recipe.pipeline import Pipeline, PipelineConfig

ROLLOUT = {"dtype": "float32", "max_model_len": 1024, "max_num_seqs": 7,
           "enable_prefix_caching": False, "kv_cache_gib": 0.25, "seed": 5}  # fmt: skip


def _args(*extra: str):
    return build_parser().parse_args(["eval", "--model", "m", "--data", "x.jsonl", *extra])


@pytest.fixture(autouse=True)
def _any_model_dir(monkeypatch):
    # --model is resolved to a checkpoint directory when parsed; none is opened here
    monkeypatch.setattr("rl.cli.data.model_dir", lambda text: text, raising=True)


def test_pipeline_engine_args_carry_the_whole_rollout_section(tmp_path):
    from test_pipeline import RECIPE

    recipe = {**RECIPE, "run": {"name": "p", "dir": str(tmp_path)}, "rollout": ROLLOUT}
    cfg = from_dict(PipelineConfig, recipe)
    args = Pipeline(cfg)._engine_args()
    assert args[0] == "--rollout"
    built = _config(_args(*args))
    assert built.rollout == replace(cfg.rollout, model="")
    assert built.rollout.max_num_seqs == 7 and not built.rollout.enable_prefix_caching


def test_flags_override_the_rollout_file_and_bad_keys_name_the_section(tmp_path):
    path = tmp_path / "rollout.yaml"
    path.write_text("max_num_seqs: 3\ndtype: bfloat16\n")
    built = _config(_args("--rollout", str(path), "--dtype", "float32"))
    assert (built.rollout.max_num_seqs, built.rollout.dtype) == (3, "float32")
    assert _config(_args()).rollout.dtype == "auto"  # no file, no flag: the default
    path.write_text("max_num_seq: 3\n")
    with pytest.raises(ConfigError, match="rollout.max_num_seq"):
        _config(_args("--rollout", str(path)))
