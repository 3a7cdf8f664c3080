"""``--model`` accepts a checkpoint reference wherever a model directory is accepted."""

import argparse

import pytest

from rl.cli.model_ref import model_dir
from rl.run.checkpoint import COMPLETE


def _checkpoint(root, step):
    d = root / f"step-{step:06d}"
    d.mkdir(parents=True)
    (d / "config.json").write_text("{}")
    (d / COMPLETE).write_text("")
    return d


def test_references_resolve_to_the_checkpoint(tmp_path):
    ckpts = tmp_path / "run" / "checkpoints"
    _checkpoint(ckpts, 2)
    newest = _checkpoint(ckpts, 4)
    (ckpts / "latest").write_text(newest.name)
    for ref in (ckpts / "latest", ckpts / "4", ckpts, tmp_path / "run"):
        assert model_dir(str(ref)) == str(newest), ref
    assert model_dir(str(ckpts / "2")) == str(ckpts / "step-000002")
    plain = tmp_path / "model"
    assert model_dir(str(plain)) == str(plain)  # the command names a missing directory


def test_a_broken_reference_is_a_usage_error(tmp_path):
    ckpts = tmp_path / "checkpoints"
    _checkpoint(ckpts, 2)
    with pytest.raises(argparse.ArgumentTypeError, match="no checkpoint of step 7"):
        model_dir(str(ckpts / "7"))
