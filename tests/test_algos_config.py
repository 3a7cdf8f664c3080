"""AlgoConfig: defaults, the tagged unions of losses and advantages, validation messages."""

import pytest

from rl.algos import LOSSES, AlgoConfig, Cispo, Dapo, Gspo, Ppo, Sapo
from rl.config import ConfigError, apply_overrides, from_dict


def test_defaults_are_dapo_with_clip_higher():
    cfg = AlgoConfig()
    assert cfg.loss == Dapo(clip_low=0.20, clip_high=0.28, agg_mode="token-mean")
    assert cfg.advantage.name == "grpo" and cfg.advantage.eps == 1e-6
    assert cfg.kl is None and cfg.kl_weight == 0.0 and cfg.dynamic_sampling
    assert "ref_logprobs" not in cfg.needs and "old_logprobs" in cfg.needs


def test_each_loss_has_its_own_options_and_aggregation():
    assert (Gspo().clip_low, Gspo().clip_high, Gspo().agg_mode) == (
        3e-4, 4e-4, "seq-mean-token-mean",
    )  # fmt: skip
    assert Ppo().clip == 0.20 and Ppo().agg_mode == "token-mean"
    assert (Cispo().clip_low, Cispo().agg_mode) == (1.0, "token-mean")
    assert (Sapo().tau_pos, Sapo().tau_neg) == (1.0, 1.05)
    assert AlgoConfig(loss=Gspo(agg_mode="token-mean")).loss.agg_mode == "token-mean"
    assert AlgoConfig(loss="sapo").loss == Sapo()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"loss": {"name": "dapo", "clip_low": 0.0}}, r"^algo\.loss\.clip_low: must be in"),
        ({"loss": {"name": "dapo", "clip_high": 1.2}}, r"^algo\.loss\.clip_high: must be in"),
        ({"loss": {"name": "gspo", "clip_low": -1e-4}}, r"^algo\.loss\.clip_low: "),
        ({"loss": {"name": "ppo", "agg_mode": "sum"}}, r"^algo\.loss\.agg_mode: 'sum'"),
        ({"loss": {"name": "sapo", "tau_neg": 0}}, r"^algo\.loss\.tau_neg: must be > 0"),
        ({"loss": {"name": "cispo", "clip_low": 1.5}}, r"^algo\.loss\.clip_low: "),
        ({"advantage": {"name": "grpo", "eps": 0.0}}, r"^algo\.advantage\.eps: must be > 0"),
        ({"loss": "grpo"}, r"^algo\.loss: 'grpo' is not allowed; choose one of 'dapo', 'ppo'"),
        ({"loss": {"clip_low": 0.1}}, r"^algo\.loss\.name: missing"),
        ({"kl": "k4"}, r"^algo\.kl: 'k4' is not allowed"),
        ({"kl": "k3", "kl_coef": -0.1}, r"^kl_coef: must be >= 0"),
        ({"tis_cap": 0.5}, r"^tis_cap: "),
        ({"overlong_buffer": -1}, r"^overlong_buffer: "),
        ({"overlong_penalty": -1.0}, r"^overlong_penalty: "),
        ({"max_extra_rounds": -1}, r"^max_extra_rounds: "),
    ],
)
def test_invalid_values_raise_naming_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(AlgoConfig, data, "algo")


@pytest.mark.parametrize(
    ("data", "key", "owners"),
    [
        ({"name": "ppo", "clip_high": 0.3}, "clip_high", "'dapo', 'gspo', 'cispo'"),
        ({"name": "dapo", "tau_pos": 2.0}, "tau_pos", "'sapo'"),
        ({"name": "sapo", "clip": 0.2}, "clip", "'ppo'"),
        ({"name": "gspo", "eps": 1.0}, "eps", None),
    ],
)
def test_an_option_of_another_variant_is_rejected_at_load(data, key, owners):
    with pytest.raises(ConfigError) as err:
        from_dict(AlgoConfig, {"loss": data}, "algo")
    text = str(err.value)
    assert text.startswith(f"algo.loss.{key}: not an option of '{data['name']}'"), text
    assert (owners is None) == ("(an option of" not in text)
    if owners:
        assert owners in text
    assert "takes:" in text and "agg_mode" in text


def test_kl_options_need_kl_on():
    for key, value in (("kl_coef", 0.1), ("kl_mode", "reward")):
        with pytest.raises(ConfigError, match=f"^{key}: is an option of the KL term"):
            from_dict(AlgoConfig, {key: value}, "algo")
    cfg = from_dict(AlgoConfig, {"kl": "k3", "kl_coef": "5e-2", "kl_mode": "reward"}, "algo")
    assert (cfg.kl_weight, cfg.kl_in_reward) == (0.05, True)
    assert AlgoConfig(kl="k2").kl_weight == 0.001 and {"ref_logprobs"} <= AlgoConfig(kl="k2").needs


def test_loading_from_yaml_data_and_overrides():
    cfg = from_dict(AlgoConfig, {"loss": "gspo", "kl": "k3", "tis_cap": None})
    assert cfg.loss == Gspo() and cfg.kl == "k3" and cfg.tis_cap is None
    data = apply_overrides({"algo": {"loss": "dapo"}}, ["algo.loss.clip_high=0.3"])
    assert from_dict(AlgoConfig, data["algo"]).loss == Dapo(clip_high=0.3)
    data = apply_overrides({"algo": {"loss": {"name": "dapo"}}}, ["algo.loss=cispo"])
    assert from_dict(AlgoConfig, data["algo"]).loss == Cispo()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_registered_loss_round_trips_through_plain_data(name):
    from rl.config import to_dict

    cfg = AlgoConfig(loss=name, kl="k1", kl_coef=0.2)
    assert from_dict(AlgoConfig, to_dict(cfg)) == cfg
