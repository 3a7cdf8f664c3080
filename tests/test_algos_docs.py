"""docs/algorithms.md cannot rot: its Python example runs, its YAML loads, its error is real."""

import re
from pathlib import Path

import pytest
import yaml

from rl.algos import AlgoConfig, registry
from rl.config import ConfigError, from_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "algorithms.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_worked_example_adds_a_loss():
    before = dict(registry.LOSSES)
    try:
        (block,) = _blocks("python")
        exec(compile(block, f"{DOC}:python", "exec"), {})
        assert "reinforce" in registry.LOSSES
    finally:
        registry.LOSSES.clear()
        registry.LOSSES.update(before)


def test_yaml_block_loads():
    (block,) = _blocks("yaml")
    cfg = from_dict(AlgoConfig, yaml.safe_load(block)["algo"], "algo")
    assert (cfg.loss.name, cfg.loss.clip_high, cfg.kl, cfg.kl_weight) == ("dapo", 0.28, "k3", 0.05)


def test_the_documented_error_is_the_loaders():
    (line,) = re.findall(r"sailrl: error: (algo\.loss\.clip_high: .*)", DOC.read_text())
    with pytest.raises(ConfigError) as err:
        from_dict(AlgoConfig, {"loss": {"name": "ppo", "clip_high": 0.3}}, "algo")
    assert str(err.value) == line
