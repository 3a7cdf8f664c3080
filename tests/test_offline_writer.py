"""Offline outputs (rl.recipe.offline_writer, rl.recipe.offline): rows written chunk by chunk, a killed job
keeps its rows and a rerun completes without duplicates; images leave as files beside JSONL
or bytes in parquet, never as JSON of bytes. The engine is replaced by a fake session here
(tests/test_public_data_runs.py runs the real one)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import public_data as pdata
import pytest
from PIL import Image

import rl.recipe.offline as offline
from policy.data import read_examples
from rl.recipe.offline import OfflineConfig, difficulty_filter, rejection_sample


class FakeSession:
    """Answers every prompt with its reference answer (sample 0) and a wrong one (sample 1);
    ``die_after`` chunks, it raises like a killed engine."""

    calls = 0
    die_after: int | None = None

    def __init__(self, model_dir, cfg):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def sample(self, examples, n, mode=None, seed=None):
        if FakeSession.die_after is not None and FakeSession.calls >= FakeSession.die_after:
            raise RuntimeError("killed")
        FakeSession.calls += 1
        out = []
        for ex in examples:
            good = (
                SimpleNamespace(text=f"<think>x</think> \\boxed{{{ex.answer}}}", token_ids=[1]),
                SimpleNamespace(reward=1.0, components={"answer": 1.0, "format": 1.0}),
            )
            bad = (
                SimpleNamespace(text="no", token_ids=[1, 2]),
                SimpleNamespace(reward=0.0, components={"answer": 0.0, "format": 0.0}),
            )
            out.append((SimpleNamespace(example=ex), [good, bad][: max(n, 1)]))
        return out


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setattr(offline, "OfflineSession", FakeSession)
    FakeSession.calls, FakeSession.die_after = 0, None
    return FakeSession


def test_killed_sample_resumes_without_duplicates(tmp_path, fake):
    data = pdata.geometry3k(tmp_path / "g.parquet", n=7)
    out = tmp_path / "out" / "cot.jsonl"
    fake.die_after = 2
    with pytest.raises(RuntimeError, match="killed"):
        rejection_sample("m", data, out, OfflineConfig(), n=2, chunk=3)
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["answer"] for r in kept] == ["10", "11", "12", "13", "14", "15"]
    with out.open("a") as fh:  # a chunk that was half written when the job died
        fh.write('{"prompt": "half')
    fake.die_after = None
    stats = rejection_sample("m", data, out, OfflineConfig(), n=2, chunk=3)
    assert stats == {"prompts": 7, "prompts_with_trace": 7, "traces": 7}
    assert fake.calls == 3  # only the last chunk was sampled again
    rows = read_examples(out)
    assert [e.answer for e in rows] == [str(10 + i) for i in range(7)]
    assert not out.with_name("cot.jsonl.progress.jsonl").exists()
    # images left as PNG files beside the output, with the pixels of the input's bytes
    first = json.loads(out.read_text().splitlines()[0])
    assert first["images"] == ["cot_images/0_0_0.png"]
    with Image.open(tmp_path / "out" / first["images"][0]) as im:
        assert im.convert("RGB").getpixel((0, 0)) == pdata.COLORS[0]


def test_filter_to_parquet_keeps_image_bytes_and_resumes(tmp_path, fake):
    data = pdata.verl_geo3k(tmp_path / "v.parquet", n=5)
    out = tmp_path / "kept.parquet"
    fake.die_after = 1
    with pytest.raises(RuntimeError):
        difficulty_filter("m", data, out, OfflineConfig(), k=2, chunk=2)
    assert not out.exists()  # parts only, until the job completes
    fake.die_after = None
    stats = difficulty_filter("m", data, out, OfflineConfig(), k=2, chunk=2)
    assert stats == {"prompts": 5, "kept": 5, "always_solved": 0, "never_solved": 0}
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.column("images").type.value_type.get_field_index("bytes") == 0
    from datasets import load_dataset

    hf = load_dataset("parquet", data_files=str(out), split="train",
                      cache_dir=str(tmp_path / "hf"))  # fmt: skip
    assert hf[0]["images"][0].convert("RGB").getpixel((0, 0)) == pdata.COLORS[0]
    back = read_examples(out)
    assert [e.answer for e in back] == ["30", "31", "32", "33", "34"]
    assert [e.metadata["pass_rate"] for e in back] == [0.5] * 5
    assert back[3].images[0].convert("RGB").getpixel((0, 0)) == pdata.COLORS[3]


def test_bytes_that_json_cannot_hold_fail_before_sampling(tmp_path, fake):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.Table.from_pylist([{"prompt": "q", "answer": "1", "blob": b"\x00\x01"}]),
        tmp_path / "b.parquet",
    )
    with pytest.raises(ValueError, match="'blob' holds bytes.*parquet"):
        rejection_sample("m", tmp_path / "b.parquet", tmp_path / "o.jsonl", OfflineConfig())
    assert fake.calls == 0
