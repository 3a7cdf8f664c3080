"""AlgoConfig defaults, derived values and validation messages."""

import pytest

from rl.algos import AlgoConfig
from rl.config import ConfigError, from_dict


def test_defaults_are_dapo_with_clip_higher():
    cfg = AlgoConfig()
    assert (cfg.loss, cfg.advantage, cfg.clip_range, cfg.agg_mode) == (
        "dapo", "grpo", (0.20, 0.28), "token-mean",
    )  # fmt: skip
    assert cfg.kl is None and cfg.dynamic_sampling


def test_derived_clip_range_and_aggregation_per_loss():
    assert AlgoConfig(loss="gspo").clip_range == (3e-4, 4e-4)
    assert AlgoConfig(loss="gspo").agg_mode == "seq-mean-token-mean"
    assert AlgoConfig(loss="ppo").clip_range == (0.20, 0.20)
    assert AlgoConfig(loss="gspo", loss_agg_mode="token-mean").agg_mode == "token-mean"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("clip_low", 0.0),
        ("clip_low", 1.0),
        ("clip_high", 1.2),
        ("gspo_clip_low", -1e-4),
        ("gspo_clip_high", 0.0),
        ("adv_eps", 0.0),
        ("kl_coef", -0.1),
        ("tis_cap", 0.5),
        ("overlong_buffer", -1),
        ("overlong_penalty", -1.0),
        ("max_extra_rounds", -1),
        ("loss", "grpo"),
        ("kl", "k4"),
        ("loss_agg_mode", "sum"),
    ],
)
def test_invalid_values_raise_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"^{field}: "):
        AlgoConfig(**{field: value})


def test_loading_from_yaml_data():
    cfg = from_dict(AlgoConfig, {"loss": "gspo", "kl": "k3", "kl_coef": "1e-3", "tis_cap": None})
    assert cfg.kl == "k3" and cfg.kl_coef == 0.001 and cfg.tis_cap is None
    with pytest.raises(ConfigError, match="'dapo', 'gspo', 'ppo'"):
        from_dict(AlgoConfig, {"loss": "grpo"})
    with pytest.raises(ConfigError, match="clip_high: must be in"):
        from_dict(AlgoConfig, {"clip_high": 2})
