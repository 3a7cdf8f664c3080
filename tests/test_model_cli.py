"""`sailrl model init|info` through rl.cli.main."""

import json

from rl.cli import main


def test_init_then_info(tmp_path, capsys):
    out = tmp_path / "moe"
    assert main(["model", "init", "--preset", "tiny-moe", "--out", str(out), "--seed", "5"]) == 0
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["model", "info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["llm_architecture"] == "Qwen3MoeForCausalLM"
    by_part = summary["by_part"]
    assert summary["total_params"] == sum(by_part.values())
    # 2 MoE layers, 8 experts of 3 * (128 x 64) weights each; top-2 are active per token.
    experts = 2 * 8 * 3 * 128 * 64
    assert summary["total_params"] - summary["active_params"] == experts * 6 // 8
    assert main(["model", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "total parameters:" in text and "active parameters:" in text
    assert "256 tokens" in text and "8 experts, top-2" in text


def test_init_dense_has_equal_total_and_active(tmp_path, capsys):
    out = tmp_path / "dense"
    assert main(["model", "init", "--preset", "tiny", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["model", "info", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["total_params"] == summary["active_params"] > 0


def test_user_errors_are_reported_without_traceback(tmp_path, capsys):
    assert main(["model", "info", str(tmp_path / "missing")]) == 2
    assert "checkpoint directory not found" in capsys.readouterr().err
    assert main(["model", "init", "--preset", "huge", "--out", str(tmp_path / "x")]) == 2
    assert "unknown preset 'huge'" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "llama"}')
    assert main(["model", "info", str(bad)]) == 2
    assert "expected 'sailvl'" in capsys.readouterr().err
