"""The isolated reward runtime: hard timeouts, crashes, error threshold, threads."""

import threading

import pytest

from rewards import (
    ErrorRateExceeded,
    RewardInput,
    RewardRuntime,
    RewardRuntimeError,
    RewardsConfig,
    RewardSetConfig,
    RewardStats,
    RuntimeConfig,
)

# Inputs that make sympy hang (or run for a very long time) while holding the GIL.
PATHOLOGICAL = [
    RewardInput("<think>a</think>\\boxed{9^{9^{9}}}", "2"),
    RewardInput("<think>a</think>\\boxed{(10^{10})!}", "2"),
]
CORRECT = [
    RewardInput("<think>half</think>\\boxed{\\frac{1}{2}}", "0.5"),
    RewardInput("<think>two</think>\\boxed{x=2}", "2"),
    RewardInput("<think>set</think>\\boxed{\\{2,1\\}}", "\\{1,2\\}"),
    RewardInput("The answer is \\boxed{(B)}", "B", mode="direct"),
    RewardInput("<think>sum</think>\\boxed{3.0}", "3"),
]


def _config(**runtime) -> RewardsConfig:
    runtime.setdefault("timeout_s", 1.0)
    return RewardsConfig(runtime=RuntimeConfig(**runtime))


def _custom(name: str, path: str, **runtime) -> RewardsConfig:
    return RewardsConfig(
        sets={"default": RewardSetConfig(weights={name: 1.0})},
        custom={name: f"reward_plugins:{path}"},
        runtime=RuntimeConfig(**{"timeout_s": 1.0, **runtime}),
    )


def _score_timeouts(batch):
    # Timeouts count toward max_error_rate: allow the two pathological samples here.
    with RewardRuntime(_config(workers=2, chunk_size=4, max_error_rate=0.5)) as runtime:
        return runtime.score(batch), runtime.last_stats


def test_pathological_inputs_time_out_and_the_rest_is_scored():
    batch = CORRECT + PATHOLOGICAL + CORRECT
    results, stats = _score_timeouts(batch)
    assert [r.outcome for r in results[5:7]] == ["timeout", "timeout"]
    assert all(r.reward == 1.0 and r.outcome == "ok" for r in results[:5] + results[7:])
    assert stats.outcomes["timeout"] == 2 and stats.worker_restarts == 2
    assert "runtime.timeout_s" in results[5].error


def test_timeouts_from_a_non_main_thread():
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=_score_timeouts(PATHOLOGICAL + CORRECT)))
    thread.start()
    thread.join(timeout=120)
    results, _ = out["r"]
    assert [r.outcome for r in results] == ["timeout"] * 2 + ["ok"] * len(CORRECT)
    assert [r.reward for r in results[2:]] == [1.0] * len(CORRECT)


def test_same_rewards_in_main_thread_and_in_a_thread():
    with RewardRuntime(_config(timeout_s=30.0)) as runtime:
        main = runtime.score(CORRECT)
        out = {}
        thread = threading.Thread(target=lambda: out.update(r=runtime.score(CORRECT)))
        thread.start()
        thread.join(timeout=60)
    assert [r.reward for r in main] == [1.0] * len(CORRECT)
    assert out["r"] == main


def test_crashing_user_reward_is_counted_not_fatal():
    batch = [RewardInput("fine", "x")] * 19 + [RewardInput("CRASH", "x")]
    with RewardRuntime(_custom("crashing", "crashing")) as runtime:
        results = runtime.score(batch)
    assert [r.outcome for r in results].count("error") == 1
    assert results[-1].reward == 0.0
    assert "ZeroDivisionError: user reward bug" in results[-1].error
    assert runtime.last_stats.outcomes["ok"] == 19


def test_error_rate_threshold_aborts_with_a_clear_message():
    batch = [RewardInput("fine", "x")] * 5 + [RewardInput("CRASH", "x")] * 5
    with (
        RewardRuntime(_custom("crashing", "crashing")) as runtime,
        pytest.raises(ErrorRateExceeded) as err,
    ):
        runtime.score(batch)
    assert "5 of 10 samples" in str(err.value) and "runtime.max_error_rate" in str(err.value)
    assert len(err.value.results) == 10 and err.value.stats.outcomes["error"] == 5


def test_dying_worker_is_replaced():
    batch = [RewardInput("ok", "x")] * 3 + [RewardInput("DIE", "x")] + [RewardInput("ok", "x")] * 3
    with RewardRuntime(_custom("dying", "dying", max_error_rate=0.5)) as runtime:
        results = runtime.score(batch)
        again = runtime.score([RewardInput("ok", "x")])
    assert [r.outcome for r in results] == ["ok"] * 3 + ["error"] + ["ok"] * 3
    assert "exit code 3" in results[3].error
    assert again[0].reward == 1.0


def test_pure_python_infinite_loop_times_out():
    batch = [RewardInput("SPIN", "x"), RewardInput("ok", "x")]
    with RewardRuntime(_custom("spinning", "spinning", workers=1, max_error_rate=0.5)) as runtime:
        results = runtime.score(batch)
    assert [r.outcome for r in results] == ["timeout", "ok"]


@pytest.mark.parametrize("path", ["wrong_type", "not_finite", "no_score_key"])
def test_bad_return_values_are_errors(path):
    with RewardRuntime(_custom(path, path, isolation=False, max_error_rate=1.0)) as runtime:
        [result] = runtime.score([RewardInput("a", "b")])
    assert result.outcome == "error" and path in result.error


def test_spawn_start_method_works():
    with RewardRuntime(_config(start_method="spawn", workers=1, timeout_s=30.0)) as runtime:
        assert [r.reward for r in runtime.score(CORRECT)] == [1.0] * len(CORRECT)


def test_unknown_custom_module_fails_at_construction():
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        RewardRuntime(
            RewardsConfig(
                sets={"default": RewardSetConfig(weights={"mine": 1.0})},
                custom={"mine": "no_such_module:fn"},
            )
        )


def test_closed_runtime_refuses_to_score():
    runtime = RewardRuntime(_config())
    runtime.close()
    with pytest.raises(RewardRuntimeError, match="closed"):
        runtime.score(CORRECT)


def test_stats_accumulate():
    with RewardRuntime(_config(isolation=False)) as runtime:
        runtime.score(CORRECT)
        runtime.score([RewardInput("<think>a</think>no box", "1")])
    assert runtime.stats.samples == len(CORRECT) + 1
    assert runtime.stats.outcomes["no_answer"] == 1
    assert runtime.stats.as_dict()["mean_reward"] == pytest.approx(
        len(CORRECT) / (len(CORRECT) + 1)
    )


def test_timeouts_count_toward_max_error_rate_and_name_the_reward():
    batch = [RewardInput("SPIN", "x"), RewardInput("ok", "x")]
    with (
        RewardRuntime(_custom("spinning", "spinning", workers=1)) as runtime,
        pytest.raises(ErrorRateExceeded) as err,
    ):
        runtime.score(batch)
    message = str(err.value)
    assert "'spinning'" in message and "1 timeout" in message and "1 of 2 samples" in message
    assert err.value.stats.outcomes["timeout"] == 1


def test_error_rate_exceeded_survives_pickling():
    import pickle

    err = ErrorRateExceeded("boom", [], RewardStats())
    again = pickle.loads(pickle.dumps(err))
    assert str(again) == "boom" and again.stats == RewardStats()
