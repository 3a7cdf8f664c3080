"""``sailrl reward score`` end to end on a small JSONL file."""

import json

import pytest

from rl.cli import main


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_score_file(tmp_path, capsys):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write(
        inp,
        [
            {
                "completion": "<think>a</think>\\boxed{\\frac12}",
                "answer": "0.5",
                "data_source": "x",
            },
            {"completion": "\\boxed{3}", "answer": 3, "mode": "direct", "metadata": {"id": 7}},
            {"completion": "<think>a</think>no answer", "answer": "1"},
            {"completion": "<think>a</think>\\boxed{9^{9^{9}}}", "answer": "2"},
        ],
    )
    config = tmp_path / "rewards.yaml"
    config.write_text("rewards:\n  runtime:\n    timeout_s: 1.0\n    max_error_rate: 0.5\n")
    code = main(
        [
            "reward",
            "score",
            "--in",
            str(inp),
            "--out",
            str(out),
            "--config",
            str(config),
            "--set",
            "runtime.workers=1",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["outcome"] for r in rows] == ["ok", "ok", "no_answer", "timeout"]
    assert [r["reward"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert rows[0]["data_source"] == "x" and rows[0]["components"]["format"] == 1.0
    assert rows[1]["metadata"] == {"id": 7}
    assert "runtime.timeout_s" in rows[3]["error"]
    summary = json.loads(capsys.readouterr().err.split("sailrl reward score: ", 1)[1])
    assert summary["outcomes"] == {"ok": 2, "timeout": 1, "error": 0, "no_answer": 1}
    assert summary["mean_reward"] == 0.5 and summary["samples_per_s"] > 0


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"answer": "1"}', "in.jsonl:1: missing 'completion'"),
        ("not json", "in.jsonl:1: not valid JSON"),
        ('{"completion": "x", "answer": "1", "mode": "deep"}', "mode: 'deep' is not allowed"),
    ],
)
def test_bad_input_lines_name_file_and_line(tmp_path, capsys, line, message):
    inp = tmp_path / "in.jsonl"
    inp.write_text(line + "\n")
    code = main(
        [
            "reward",
            "score",
            "--in",
            str(inp),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--set",
            "runtime.isolation=false",
        ]
    )
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_config_key_is_reported(tmp_path, capsys):
    inp = tmp_path / "in.jsonl"
    _write(inp, [{"completion": "x", "answer": "1"}])
    code = main(
        [
            "reward",
            "score",
            "--in",
            str(inp),
            "--out",
            str(tmp_path / "o.jsonl"),
            "--set",
            "runtime.timout_s=3",
        ]
    )
    assert code == 2
    assert "did you mean 'timeout_s'" in capsys.readouterr().err
