from dataclasses import dataclass, field
from typing import Literal

import pytest

from rl.config import ConfigError, apply_overrides, from_dict, load_config, to_dict


@dataclass
class Inner:
    lr: float = 1e-6
    algo: Literal["dapo", "gspo"] = "dapo"
    steps: int = 3
    tags: list[str] = field(default_factory=list)
    seed: int | None = None

    def __post_init__(self):
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")


@dataclass
class Outer:
    name: str = "x"
    rl: Inner = field(default_factory=Inner)
    debug: bool = False


def test_yaml_and_dotted_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: demo\nrl:\n  lr: 2.0e-6\n  tags: [a, b]\n")
    cfg = load_config(Outer, path, ["rl.lr=1e-5", "rl.algo=gspo", "debug=true", "rl.seed=7"])
    assert cfg.name == "demo"
    assert cfg.rl.lr == pytest.approx(1e-5)
    assert cfg.rl.algo == "gspo"
    assert cfg.rl.tags == ["a", "b"]
    assert cfg.rl.seed == 7
    assert cfg.debug is True
    assert from_dict(Outer, to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rl": {"lrr": 1}}, "rl.lrr: unknown key (did you mean 'lr'?)"),
        ({"rl": {"algo": "ppo"}}, "rl.algo: 'ppo' is not allowed; choose one of 'dapo', 'gspo'"),
        ({"rl": {"steps": "many"}}, "rl.steps: expected an integer"),
        ({"debug": "yes"}, "debug: expected true or false"),
        ({"rl": {"lr": -1.0}}, "lr must be positive"),
        ({"rl": 3}, "rl: expected a mapping"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Outer, data)
    assert message in str(err.value)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides({}, ["rl.lr"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rl: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, bad)
