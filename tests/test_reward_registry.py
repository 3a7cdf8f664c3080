"""Registering user rewards (dotted path, decorator, entry point) and routing between sets."""

import inspect

import pytest

import rewards.registry as registry
from rewards import (
    RewardInput,
    RewardRuntime,
    RewardsConfig,
    RewardSetConfig,
    RoutingConfig,
    RuntimeConfig,
)

GOOD = "<think>a</think>\\boxed{4}"


def _runtime(config: RewardsConfig, isolation: bool = True) -> RewardRuntime:
    config.runtime = RuntimeConfig(isolation=isolation, timeout_s=10.0, workers=1)
    return RewardRuntime(config)


def test_dotted_path_dict_reward_logs_its_extras():
    config = RewardsConfig(
        sets={"default": RewardSetConfig(weights={"answer": 0.5, "length": 0.5})},
        custom={"length": "reward_plugins:length_bonus"},
    )
    with _runtime(config) as runtime:
        [result] = runtime.score([RewardInput(GOOD, "4")])
    assert result.reward == 1.0
    assert result.components["length"] == 1.0
    assert result.components["length/chars"] == float(len(GOOD))


def test_decorator_registration(monkeypatch):
    monkeypatch.setattr(registry, "REGISTERED", {})
    import reward_plugins

    registry.register("crashing_ok")(reward_plugins.crashing)
    config = RewardsConfig(sets={"default": RewardSetConfig(weights={"crashing_ok": 1.0})})
    with _runtime(config) as runtime:
        assert runtime.score([RewardInput("fine", "x")])[0].reward == 1.0


def test_entry_point_registration(monkeypatch):
    monkeypatch.setattr(registry, "_entry_points", lambda: {"tagged": "reward_plugins:source_tag"})
    config = RewardsConfig(sets={"default": RewardSetConfig(weights={"tagged": 1.0})})
    with _runtime(config) as runtime:
        results = runtime.score(
            [
                RewardInput("a", "b", metadata={"data_source": "ocr"}),
                RewardInput("a", "b", mode="direct"),
            ]
        )
    assert [r.reward for r in results] == [1.0, 0.0]


def test_unknown_reward_lists_the_known_ones():
    config = RewardsConfig(sets={"default": RewardSetConfig(weights={"answr": 1.0})})
    with pytest.raises(ValueError, match="unknown reward 'answr'; known rewards: answer, format"):
        RewardRuntime(config)


def test_functions_workers_cannot_import_are_refused():
    def local(completion, answer, metadata):
        return 1.0

    with pytest.raises(ValueError, match="module-level function"):
        registry.register("local")(local)


def test_routing_by_data_source():
    config = RewardsConfig(
        sets={
            "default": RewardSetConfig(weights={"answer": 1.0}),
            "format_only": RewardSetConfig(weights={"format": 1.0}),
        },
        routing=RoutingConfig(key="data_source", routes={"chat": "format_only"}),
    )
    wrong = "<think>a</think>\\boxed{5}"
    batch = [RewardInput(wrong, "4", metadata={"data_source": "chat"}), RewardInput(wrong, "4")]
    with _runtime(config, isolation=False) as runtime:
        results = runtime.score(batch)
    assert [r.reward for r in results] == [1.0, 0.0]
    assert set(results[0].components) == {"format"}


@pytest.mark.parametrize("name", sorted(registry.BUILTINS))
def test_each_builtin_reward_imports_and_takes_completion_answer_metadata(name):
    """The run's preflight trusts sailrl's own rewards without importing them: this is
    the check it skips."""
    obj = registry.load_object(registry.BUILTINS[name])
    assert callable(obj)
    if not getattr(obj, "needs_config", False):
        inspect.signature(obj).bind("completion", "answer", {})
