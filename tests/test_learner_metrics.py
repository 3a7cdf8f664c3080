"""policy.metrics: each reduction combines calls and ranks as one call over everything would."""

import math

import pytest

from policy.metrics import Metric, MetricSums, over_mini_batches


def _two_ranks(a: MetricSums, b: MetricSums) -> list[dict]:
    """The learner's two collectives (SUM, then MAX) between ranks a and b."""
    kinds = sorted(set(a.kinds()) | set(b.kinds()))
    sent: dict[str, dict] = {"a": {}, "b": {}}
    for key, sums in (("a", a), ("b", b)):  # what each rank puts into the collectives
        dry = MetricSums()
        dry.state = dict(sums.state)
        dry.all_reduce(
            kinds,
            lambda v, k=key: sent[k].setdefault("sum", v),
            lambda v, k=key: sent[k].setdefault("max", v),
        )
    total = [x + y for x, y in zip(sent["a"]["sum"], sent["b"]["sum"])]
    top = [max(x, y) for x, y in zip(sent["a"]["max"], sent["b"]["max"])]
    for sums in (a, b):
        sums.all_reduce(kinds, lambda v: total, lambda v: top)
    return [a.result(), b.result()]


def test_each_reduction_over_calls():
    sums = MetricSums()
    sums.add({"t": Metric.token_mean(1.0, 3), "s": Metric.seq_mean(2.0, 1), "n": Metric.sum(5)})
    sums.add({"t": Metric.token_mean(3.0, 1), "s": Metric.seq_mean(5.0, 2), "n": 1.5})
    sums.add({"lo": Metric.min(0.2, 0), "hi": Metric.max(9.0, 0)})  # saw nothing: ignored
    sums.add({"lo": Metric.min(0.7, 2), "hi": Metric.max(1.5, 2)})
    out = sums.result()
    assert out == {"t": 1.5, "s": 4.0, "n": 6.5, "lo": 0.7, "hi": 1.5}


def test_empty_means_and_extremes_are_left_out():
    sums = MetricSums()
    sums.add({"t": Metric.token_mean(0.0, 0), "lo": Metric.min(3.0, 0), "n": Metric.sum(0.0)})
    assert sums.result() == {"n": 0.0}


def test_a_name_with_two_reductions_is_an_error():
    sums = MetricSums()
    sums.add({"x": Metric.sum(1.0)})
    with pytest.raises(ValueError, match="'x' reported as sum and as max"):
        sums.add({"x": Metric.max(1.0, 1)})


def test_ranks_reduce_like_one_call_over_both():
    a, b, both = MetricSums(), MetricSums(), MetricSums()
    rows_a = [{"t": Metric.token_mean(2.0, 4), "lo": Metric.min(0.5, 4), "n": Metric.sum(1.0)}]
    rows_b = [{"t": Metric.token_mean(5.0, 2), "lo": Metric.min(0.3, 2), "hi": Metric.max(7, 2)}]
    for row in rows_a:
        a.add(row), both.add(row)
    for row in rows_b:
        b.add(row), both.add(row)
    got_a, got_b = _two_ranks(a, b)
    assert got_a == got_b == both.result()
    assert got_a["t"] == pytest.approx(3.0) and got_a["lo"] == 0.3 and got_a["hi"] == 7


def test_mini_batches_average_but_extremes_stay_extreme():
    rows = [{"t": 1.0, "lo": 0.5, "hi": 2.0}, {"t": 3.0, "lo": 0.1, "hi": 1.0}]
    out = over_mini_batches(rows, {"t": "token_mean", "lo": "min", "hi": "max"})
    assert out == {"t": 2.0, "lo": 0.1, "hi": 2.0}
    assert math.isfinite(out["t"])
