"""docs/rewards.md cannot rot: its Python blocks and YAML config run here."""

import doctest
import importlib
import re
from pathlib import Path

import pytest
import yaml

from rewards import RewardsConfig
from rl.config import ConfigError, from_dict

DOC = Path(__file__).resolve().parents[1] / "docs" / "rewards.md"


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), re.DOTALL)


@pytest.mark.parametrize("index", range(len(_blocks("python"))))
def test_python_blocks_run(index, monkeypatch):
    monkeypatch.syspath_prepend(
        str(DOC.parents[1])
    )  # docs.examples is importable from the repo root
    exec(compile(_blocks("python")[index], f"{DOC}:python-block-{index}", "exec"), {})


def test_yaml_block_is_a_valid_config():
    data = yaml.safe_load(_blocks("yaml")[0])
    config = from_dict(RewardsConfig, data)
    assert config.sets["general"].combine == "gated"
    assert config.routing.routes["chartqa"] == "general"


def test_example_module_matches_doc_and_its_doctests_pass(monkeypatch):
    monkeypatch.syspath_prepend(str(DOC.parents[1]))
    module = importlib.import_module("docs.examples.my_reward")
    failures, tried = doctest.testmod(module)
    assert tried >= 2 and failures == 0
    snippet = _blocks("python")[0].strip().splitlines()[1:]
    source = Path(module.__file__).read_text()
    assert all(line.strip() in source for line in snippet if line.strip())


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="sets.default.weights: linear weights must sum to 1"):
        from_dict(RewardsConfig, {"sets": {"default": {"weights": {"answer": 0.5, "format": 0.1}}}})
    with pytest.raises(ConfigError, match="sets.default.combine: 'sum' is not allowed"):
        from_dict(RewardsConfig, {"sets": {"default": {"combine": "sum"}}})
    with pytest.raises(ConfigError, match="judge.base_url: the think_quality reward is used"):
        from_dict(
            RewardsConfig, {"sets": {"default": {"combine": "gated", "gate": ["think_quality"]}}}
        )
    with pytest.raises(ConfigError, match="routing.default: unknown reward set 'nope'"):
        from_dict(RewardsConfig, {"routing": {"default": "nope"}})
    with pytest.raises(ConfigError, match="runtime.timeout_s: 5 s is shorter than the judge"):
        from_dict(
            RewardsConfig,
            {
                "sets": {"default": {"combine": "gated", "gate": ["think_quality"]}},
                "judge": {"base_url": "http://127.0.0.1:1/v1", "model": "m", "timeout_s": 10},
            },
        )
    with pytest.raises(ConfigError, match="runtime.workers: must be at least 1"):
        from_dict(RewardsConfig, {"runtime": {"workers": 0}})
