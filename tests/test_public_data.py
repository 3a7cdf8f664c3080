"""Published dataset schemas load with no conversion step (policy.data over ``datasets``):
each fixture, written with ``datasets`` itself, gives the right prompt, answer and images."""

from __future__ import annotations

import json

import public_data as pdata
import pytest
from PIL import Image

from policy.data import ReadOptions, read_examples
from policy.data_check import DataError


def _pixels(image) -> tuple:
    return Image.Image.convert(image, "RGB").getpixel((0, 0))


def test_geometry3k_sequence_of_image_structs(tmp_path):
    examples = read_examples(pdata.geometry3k(tmp_path / "g.parquet"))
    assert examples.format == "hf-vqa" and len(examples) == 4
    first = examples[0]
    assert first.prompt == "<image>Find x in triangle 0." and first.answer == "10"
    assert len(first.images) == 1 and isinstance(first.images[0], Image.Image)
    assert _pixels(first.images[0]) == pdata.COLORS[0]
    assert _pixels(examples[1].images[0]) == pdata.COLORS[1]
    assert examples.report.rows_with_images == 4 and examples.report.images == 4


def test_verl_layout(tmp_path):
    examples = read_examples(pdata.verl_geo3k(tmp_path / "v.parquet"))
    assert examples.format == "verl"
    ex = examples[2]
    assert ex.messages == ({"role": "user", "content": "<image>Angle 2? Put it in \\boxed{}."},)
    assert ex.answer == "32" and ex.data_source == "hiyouga/geometry3k" and ex.domain == "math"
    assert ex.metadata["extra_info"]["index"] == 2
    assert _pixels(ex.images[0]) == pdata.COLORS[2]


def test_mathvista_decoded_image_and_choices(tmp_path):
    examples = read_examples(pdata.mathvista(tmp_path / "mv.parquet"))
    choice, free = examples
    assert choice.prompt.startswith("Hint: choose.") and "(B) square" in choice.prompt
    assert choice.answer == "square" and choice.metadata["choices"][1] == "square"
    assert choice.metadata["image_path"] == "images/1.jpg"  # no such file: bytes are used
    assert _pixels(choice.images[0]) == pdata.COLORS[0] and free.answer == "4"


def test_choices_letter_answers_and_boxed_solutions(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": "Pick", "choices": ["red", "blue"], "answer": "B"},
            {"problem": "Sum?", "solution": "2 + 2 so \\boxed{4}."}]  # fmt: skip
    for k, row in enumerate(rows):
        pq.write_table(pa.Table.from_pylist([row]), tmp_path / f"{k}.parquet")
    letter = read_examples(tmp_path / "0.parquet")[0]
    assert letter.answer == "blue" and letter.prompt == "Pick\nChoices:\n(A) red\n(B) blue"
    assert read_examples(tmp_path / "1.parquet")[0].answer == "4"


def test_llava_json_with_image_files(tmp_path):
    examples = read_examples(pdata.llava(tmp_path / "sft.json"), require=("response",))
    assert examples.format == "llava"
    think, direct = examples
    assert think.messages == ({"role": "user", "content": "<image>\nWhat color is it?"},)
    assert think.response.endswith("\\boxed{red}") and think.answer == "red"
    assert think.mode == "think" and direct.mode == "direct" and direct.response == "Blue."
    assert think.images == (str((tmp_path / "imgs" / "0.png").resolve()),)


def test_trl_prompt_completion_and_messages(tmp_path):
    pc = read_examples(pdata.trl_prompt_completion(tmp_path / "pc.jsonl"))
    assert pc.format == "trl" and pc[3].prompt == "What is 3 + 3?"
    assert pc[3].response == "\\boxed{6}" and pc[3].answer == "6" and pc[3].mode == "direct"
    msgs = read_examples(pdata.trl_messages(tmp_path / "m.parquet"))
    ex = msgs[1]
    assert [m["role"] for m in ex.messages] == ["system", "user"]
    assert ex.response == "<think>\nok\n</think>\n\n1" and ex.mode == "think"


def test_column_mapping_and_named_format(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(
        [{"q": "What?", "sol": "\\boxed{7}", "pic": {"bytes": pdata.png(), "path": None}}]
    )
    pq.write_table(table, tmp_path / "odd.parquet")
    opts = ReadOptions(format="sailrl", columns={"prompt": "q", "answer": "sol", "images": "pic"})
    ex = read_examples(tmp_path / "odd.parquet", opts)[0]
    assert ex.prompt == "What?" and ex.answer == "7" and len(ex.images) == 1
    with pytest.raises(ValueError, match="data.columns: 'question' is not a key"):
        ReadOptions(columns={"question": "q"})


def test_directories_and_globs_read_every_file(tmp_path):
    (tmp_path / "d").mkdir()
    pdata.geometry3k(tmp_path / "d" / "a.parquet", n=2)
    pdata.geometry3k(tmp_path / "d" / "b.parquet", n=3)
    assert len(read_examples(tmp_path / "d")) == 5
    assert len(read_examples(str(tmp_path / "d" / "b*.parquet"))) == 3


def test_undecodable_image_error_names_file_and_row(tmp_path):
    path = pdata.geometry3k(tmp_path / "g.parquet", n=4, bad_row=2)
    with pytest.raises(
        DataError, match=r"g.parquet:row 3: images\[0\]: the embedded bytes are no image"
    ):
        read_examples(path)
    kept = read_examples(path, ReadOptions(on_bad_row="skip", max_bad_fraction=0.5))
    assert len(kept) == 3 and [e.answer for e in kept] == ["10", "11", "13"]
    assert len(kept.report.bad_rows) == 1 and kept.report.bad_per_file == {str(path): 1}
    with pytest.raises(DataError, match="more than data.max_bad_fraction=0.1"):
        read_examples(path, ReadOptions(on_bad_row="skip", max_bad_fraction=0.1))


def test_tiny_and_truncated_images_are_bad_rows(tmp_path):
    path = pdata.geometry3k(tmp_path / "t.parquet", n=2, size=(1, 1))
    with pytest.raises(DataError, match=r"t.parquet:row 1: image .* is 1x1 px"):
        read_examples(path)
    (tmp_path / "cut.png").write_bytes(pdata.png()[:60])
    (tmp_path / "c.jsonl").write_text('{"prompt": "q", "answer": "1", "images": ["cut.png"]}\n')
    with pytest.raises(DataError, match=r"c.jsonl:1: undecodable image"):
        read_examples(tmp_path / "c.jsonl")


def test_unknown_columns_are_a_clear_error(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"foo": 1}\n')
    with pytest.raises(ValueError, match="fit none of the schemas"):
        read_examples(tmp_path / "x.jsonl")


def test_vision_tower_sees_the_embedded_image_bytes(tmp_path):
    """Same prompt, different image bytes: different pixel values, different logits."""
    import torch
    from sft_tiny import tiny_model

    from rollout.prompts import prepare
    from rollout.types import RolloutRequest
    from sft.encoding import encode_example

    model, processor = tiny_model()
    model.eval()
    red = read_examples(pdata.geometry3k(tmp_path / "red.parquet", n=1))[0]
    rows = pdata.geometry3k(tmp_path / "blue.parquet", n=2)
    blue = read_examples(rows)[1]  # COLORS[1], same size, same problem text but the index
    blue = type(blue)(**{**blue.__dict__, "prompt": red.prompt, "response": "\\boxed{1}"})
    red = type(red)(**{**red.__dict__, "response": "\\boxed{1}"})
    logits = []
    for ex in (red, blue):
        sample = encode_example(processor, ex)
        ids = torch.tensor([sample.input_ids])
        with torch.no_grad():
            logits.append(model(input_ids=ids, pixel_values=sample.pixel_values).logits)
    assert logits[0].shape == logits[1].shape
    assert (logits[0] - logits[1]).abs().max() > 1e-4
    # the rollout side gets the decoded image itself, next to processor-expanded ids
    ready = prepare(RolloutRequest("p", red.question, tuple(red.images)), processor, 4096)
    image = ready.vllm_input()["multi_modal_data"]["image"][0]
    assert image.getpixel((0, 0)) == pdata.COLORS[0]
    assert ready.prompt_token_ids.count(processor.img_context_token_id) > 0


def test_bad_image_stops_an_rl_run_before_any_actor(tmp_path, monkeypatch):
    import rl.loop.driver as driver
    from rl.config import ConfigError
    from rl.run.experiment import load_experiment

    started = []
    bad = pdata.geometry3k(tmp_path / "bad.parquet", n=4, bad_row=2)
    cfg = load_experiment(None, [f"data.train={bad}", f"run.dir={tmp_path / 'run'}"])
    with pytest.raises(ConfigError, match=r"data.train: .*bad.parquet:row 3: images\[0\]"):
        driver.run_rl(cfg, connect=lambda *a, **k: started.append(1))
    assert not started and not (tmp_path / "run" / "init-model").exists()


@pytest.mark.parametrize(
    "rows",
    [
        [{"prompt": "a", "answer": "1", "mode": "direct"}, {"prompt": "b", "answer": "2"}],
        [{"prompt": "a", "answer": 1, "difficulty": 0.5}],
        [{"prompt": "a", "response": "<think>x</think> 1"}, {"prompt": "b", "response": "2"}],
        [{"prompt": "a", "completion": "<think>x</think>"}, {"prompt": "b", "completion": "2"}],
        [{"prompt": "a", "answer": "1", "mode": "fast"}],
        [{"prompt": "  ", "answer": "1"}],
        [{"prompt": "a", "answer": None, "response": None}],
        [{"prompt": "a", "answer": "1", "response": None}],
    ],
)
def test_column_check_agrees_with_parsing_every_row(tmp_path, rows):
    """The vectorised check of text tables either proves all rows valid with the same modes
    as parsing them, or defers to parsing (which then names the bad rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from policy.data import open_examples
    from policy.data_check import check_examples
    from policy.data_fastcheck import fast_modes

    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    for require in ((), ("response",)):
        examples = open_examples(tmp_path / "t.parquet")
        fast = fast_modes(examples.files[0], examples.formats[0], {}, require)
        parsed = []
        for i in range(len(examples)):
            try:
                ex = examples[i]
            except ValueError:
                parsed = None
                break
            if any(not getattr(ex, k) for k in require):
                parsed = None
                break
            parsed.append(int(ex.mode == "think"))
        if fast is not None:
            assert parsed is not None and fast.tolist() == parsed
        if parsed is None:
            assert fast is None
            with pytest.raises(DataError):
                check_examples(examples, ReadOptions(), require)


def test_trl_vision_content_parts_and_image_root(tmp_path):
    from datasets import Dataset

    rows = {"messages": [[
        {"role": "user", "content": [{"type": "image", "text": None},
                                     {"type": "text", "text": "What colour?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Red."}]}]],
        "images": [[{"bytes": pdata.png(), "path": None}]]}  # fmt: skip
    Dataset.from_dict(rows).to_parquet(str(tmp_path / "v.parquet"))
    ex = read_examples(tmp_path / "v.parquet")[0]
    assert ex.messages == ({"role": "user", "content": "<image>What colour?"},)
    assert ex.response == "Red." and len(ex.images) == 1
    llava = pdata.llava(tmp_path / "imgs" / "sft.json")  # its images lie in imgs/imgs/
    with pytest.raises(DataError, match="image file not found"):
        read_examples(llava, ReadOptions(image_root=str(tmp_path)))
    assert read_examples(llava, ReadOptions(image_root=str(tmp_path / "imgs")))[0].images


def test_cli_inspect_lists_bad_rows_and_convert_refuses_them(tmp_path, capsys):
    from rl.cli import main

    bad = pdata.geometry3k(tmp_path / "g.parquet", n=4, bad_row=2)
    assert main(["data", "inspect", str(bad), "--rows", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (summary["format"], summary["rows"], summary["bad_rows"]) == ("hf-vqa", 4, 1)
    assert summary["bad_examples"][0]["where"].endswith("g.parquet:row 3")
    assert main(["data", "convert", str(bad), "--out", str(tmp_path / "c.parquet")]) == 2
    assert "g.parquet:row 3" in capsys.readouterr().err
    args = ["data", "convert", str(bad), "--out", str(tmp_path / "c.parquet"), "--on-bad-row",
            "skip", "--max-bad-fraction", "0.5"]  # fmt: skip
    assert main(args) == 0
    assert [e.answer for e in read_examples(tmp_path / "c.parquet")] == ["10", "11", "13"]
