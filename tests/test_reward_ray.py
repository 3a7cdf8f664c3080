"""The reward runtime inside a Ray actor: timeouts still work and correct answers score 1."""

import threading

import pytest

from rewards import RewardInput, RewardRuntime, RewardsConfig, RuntimeConfig

ray = pytest.importorskip("ray")

CORRECT = [
    RewardInput("<think>half</think>\\boxed{\\dfrac12}", "1/2"),
    RewardInput("<think>two</think>\\boxed{x=2}", "2"),
    RewardInput("<think>interval</think>\\boxed{[0,1)}", "[0,1)"),
    RewardInput("The answer is \\boxed{\\text{(C)}}", "C", mode="direct"),
    RewardInput("<think>words</think>\\boxed{Paris}", "paris"),
]


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
    )
    yield
    ray.shutdown()


def test_actor_scores_like_the_main_thread_and_a_thread_and_times_out(ray_cluster):
    config = RewardsConfig(runtime=RuntimeConfig(timeout_s=1.0, max_error_rate=0.5))
    with RewardRuntime(config) as local:
        expected = local.score(CORRECT)
        in_thread = {}
        thread = threading.Thread(target=lambda: in_thread.update(r=local.score(CORRECT)))
        thread.start()
        thread.join(timeout=60)
    actor = ray.remote(RewardRuntime).options(num_cpus=0).remote(config)
    try:
        batch = [RewardInput("<think>a</think>\\boxed{9^{9^{9}}}", "2"), *CORRECT]
        results = ray.get(actor.score.remote(batch), timeout=120)
        again = ray.get(actor.score.remote(CORRECT), timeout=60)
    finally:
        ray.get(actor.close.remote(), timeout=60)
        ray.kill(actor)
    assert [r.reward for r in expected] == [1.0] * len(CORRECT)
    assert in_thread["r"] == expected
    assert results[0].outcome == "timeout"
    assert results[1:] == expected
    assert again == expected
