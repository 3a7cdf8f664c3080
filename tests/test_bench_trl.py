"""``sailrl bench trl`` end to end on the tiny model (2 steps per side): its last stdout line
is one JSON object with, per model, the step-time ratio and the peak RSS of both systems."""

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
    assert tiny["step_time_ratio"] > 0
    assert set(tiny["peak_rss_mb"]) == {"sailrl", "trl"}
    assert all(v > 0 for v in tiny["peak_rss_mb"].values())
    # PSS splits shared pages: not above RSS (read a moment apart in one sample)
    assert all(
        0 < tiny["peak_pss_mb"][k] <= 1.05 * tiny["peak_rss_mb"][k] for k in ("sailrl", "trl")
    )
    assert all(len(c) == 2 for c in tiny["reward_curve"].values())
    assert tiny["architecture"] == "Qwen3ForCausalLM"
    assert png.read_bytes()[:4] == b"\x89PNG"
