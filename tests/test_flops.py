"""policy.flops and rl.bench.learner_report: the learner's FLOP/s against a measured matmul ceiling."""

from __future__ import annotations

import pytest

from policy.checkpoint import init_checkpoint, load_config
from policy.flops import learner_flops, matmul_ceiling, matmul_params
from policy.params import parameter_summary
from rl.bench.learner_report import learner_report


def test_matmul_ceiling_is_a_positive_rate_on_the_given_threads():
    out = matmul_ceiling(threads=1, m=64, k=32, n=48, seconds=0.01)
    assert out["threads"] == 1 and out["shape"] == [64, 32, 48]
    assert out["flops_per_s"] > 0


def test_matmul_params_drop_the_input_embedding_and_unrouted_experts():
    summary = {"by_part": {"language_model": 1000}, "total_params": 1300, "active_params": 1300}
    assert matmul_params(summary, embedding=100, tied=False) == 900
    assert matmul_params(summary, embedding=100, tied=True) == 1000
    moe = {**summary, "active_params": 1100}  # 200 parameters of unrouted experts
    assert matmul_params(moe, embedding=100, tied=False) == 700
    assert learner_flops(10, 5, 2.0) == 150.0 and learner_flops(10, 5, 0.0) == 0.0


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return init_checkpoint("tiny", tmp_path_factory.mktemp("tiny") / "ckpt", seed=0)


def test_learner_report_from_a_metrics_row(tiny_dir, monkeypatch):
    import policy.flops

    monkeypatch.setattr(policy.flops, "matmul_ceiling", lambda: {"flops_per_s": 1e9, "threads": 2})
    row = {"train/padded_tokens": 1000.0, "train/time_s": 0.5, "train/tokens": 1800.0}
    report = learner_report(row, tiny_dir)
    config = load_config(tiny_dir)
    llm = config.llm_config
    params = parameter_summary(config)["by_part"]["language_model"]
    params -= llm.vocab_size * llm.hidden_size  # untied input embedding
    assert report["matmul_params"] == params
    assert report["flops_per_s"] == pytest.approx(6 * params * 1000 / 0.5, rel=1e-2)
    assert report["fraction_of_ceiling"] == pytest.approx(6 * params * 1000 / 0.5 / 1e9, abs=1e-3)
