import json

import pytest

from rl.run.checkpoint import CheckpointError, CheckpointManager, read_state


def _writer(payload):
    def write(path):
        (path / "weights.bin").write_bytes(payload)

    return write


def test_save_publishes_and_prunes(tmp_path):
    mgr = CheckpointManager(tmp_path / "ckpt", keep=2)
    assert mgr.latest() is None
    for step in (1, 2, 3):
        mgr.save(step, _writer(bytes([step])), {"cursor": step * 10})
    names = [p.name for p in mgr.complete()]
    assert names == ["step-000002", "step-000003"]
    latest = mgr.latest()
    assert latest.name == "step-000003"
    assert read_state(latest) == {"cursor": 30, "step": 3}
    assert (latest / "weights.bin").read_bytes() == b"\x03"


def test_crash_during_write_keeps_previous(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=2)
    mgr.save(1, _writer(b"one"), {})

    def crashing(path):
        (path / "weights.bin").write_bytes(b"half")
        raise KeyboardInterrupt("killed mid-write")

    with pytest.raises(KeyboardInterrupt):
        mgr.save(2, crashing, {})
    latest = mgr.latest()
    assert latest.name == "step-000001"
    assert (latest / "weights.bin").read_bytes() == b"one"
    # the next save cleans up the leftover temporary directory
    mgr.save(2, _writer(b"two"), {})
    assert mgr.latest().name == "step-000002"
    assert not list(tmp_path.glob(".tmp-*"))


def test_latest_pointer_to_broken_dir_falls_back(tmp_path):
    mgr = CheckpointManager(tmp_path, keep=3)
    mgr.save(1, _writer(b"a"), {})
    mgr.save(2, _writer(b"b"), {})
    (tmp_path / "step-000002" / "COMPLETE").unlink()  # as if deleted by hand
    assert mgr.latest().name == "step-000001"


def test_resave_same_step_replaces(tmp_path):
    mgr = CheckpointManager(tmp_path)
    mgr.save(5, _writer(b"x"), {"v": 1})
    mgr.save(5, _writer(b"y"), {"v": 2})
    assert read_state(mgr.latest())["v"] == 2
    assert (mgr.latest() / "weights.bin").read_bytes() == b"y"


def test_read_state_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state(tmp_path / "nope")
    partial = tmp_path / "step-000001"
    partial.mkdir()
    with pytest.raises(CheckpointError, match="incomplete"):
        read_state(partial)
    (partial / "COMPLETE").write_text("ok")
    (partial / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable"):
        read_state(partial)
    (partial / "state.json").write_text(json.dumps({"step": 1}))
    assert read_state(partial)["step"] == 1
