"""``sailrl bench trl`` end to end on the tiny model (2 steps per side): its last stdout line
is one JSON object with, per model, the step-time and memory ratios of both sailrl sides (Ray
actors, colocated) against TRL and the peak RSS of all three."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def test_bench_trl_json_has_the_fields(tmp_path, capsys):
    from rl.cli import main

    png = tmp_path / "curves.png"
    assert main(["bench", "trl", "--models", "tiny", "--steps", "2", "--png", str(png)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(last)
    tiny = result["models"]["tiny"]
    sailrl_sides = {"sailrl", "sailrl_colocated"}
    assert set(tiny["step_time_ratio"]) == set(tiny["rss_ratio"]) == sailrl_sides
    assert all(v > 0 for v in tiny["step_time_ratio"].values())
    assert set(tiny["peak_rss_mb"]) == {*sailrl_sides, "trl"}
    for side in sailrl_sides:
        expect = tiny["peak_rss_mb"][side] / tiny["peak_rss_mb"]["trl"]
        assert tiny["rss_ratio"][side] == pytest.approx(expect, abs=0.01)
    # one process and the reward pool's workers, no Ray: smaller than the actors' tree
    assert tiny["peak_rss_mb"]["sailrl_colocated"] < tiny["peak_rss_mb"]["sailrl"]
    assert all(v > 0 for v in tiny["peak_rss_mb"].values())
    # PSS splits shared pages: not above RSS (read a moment apart in one sample)
    assert all(
        0 < tiny["peak_pss_mb"][k] <= 1.05 * tiny["peak_rss_mb"][k] for k in tiny["peak_rss_mb"]
    )
    assert all(len(c) == 2 for c in tiny["reward_curve"].values())
    # the same sailrl run either way: the same rewards
    assert tiny["reward_curve"]["sailrl"] == tiny["reward_curve"]["sailrl_colocated"]
    assert tiny["architecture"] == "Qwen3ForCausalLM"
    assert png.read_bytes()[:4] == b"\x89PNG"
