"""The JSONL/parquet example schema (policy.data)."""

import pytest
from PIL import Image

from policy.data import Example, read_examples, write_examples


@pytest.fixture
def image_dir(tmp_path):
    (tmp_path / "img").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "img" / "a.png")
    return tmp_path


def test_reads_all_fields(image_dir):
    path = write_examples(
        image_dir / "train.jsonl",
        [
            {
                "prompt": "What is 2+3?",
                "answer": "5",
                "images": ["img/a.png"],
                "data_source": "synth",
                "difficulty": 2,
            },
            {
                "messages": [{"role": "user", "content": "<image> Count."}],
                "answer": 3,
                "mode": "direct",
                "response": "\\boxed{3}",
                "domain": "counting",
            },
        ],
    )
    first, second = read_examples(path)
    assert isinstance(first, Example)
    assert first.prompt == "What is 2+3?" and first.answer == "5" and first.mode == "think"
    assert first.images == (str((image_dir / "img" / "a.png").resolve()),)
    assert first.metadata == {"difficulty": 2} and first.data_source == "synth"
    assert second.messages == ({"role": "user", "content": "<image> Count."},)
    assert second.answer == "3" and second.mode == "direct" and second.response == "\\boxed{3}"
    assert second.question == second.messages and second.domain == "counting"
    with pytest.raises(AttributeError):
        first.answer = "6"


def test_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a", "answer": "1"}\n\n{"prompt": "b", "answer": "2"}\n')
    assert [e.prompt for e in read_examples(path)] == ["a", "b"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"d.jsonl:2: invalid JSON"),
        ('{"answer": "1"}', r"d.jsonl:2: missing 'prompt'"),
        (
            '{"prompt": "q", "answer": "1", "mode": "fast"}',
            r"d.jsonl:2: 'mode' is 'fast'; allowed: \['think', 'direct'\]",
        ),
        (
            '{"prompt": "q", "answer": "1", "images": ["nope.png"]}',
            r"d.jsonl:2: image file not found: .*nope.png",
        ),
        ('{"prompt": "q"}', r"d.jsonl:2: missing 'answer'"),
        (
            '{"messages": [{"role": "bot", "content": "x"}], "answer": "1"}',
            r"d.jsonl:2: messages\[0\].role is 'bot'",
        ),
        ("[1, 2]", r"d.jsonl:2: expected a JSON object"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "ok", "answer": "1"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message):
        read_examples(path)


def test_parquet(image_dir):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.Table.from_pylist(
        [
            {"prompt": "q1", "answer": "1", "images": ["img/a.png"], "mode": None},
            {"prompt": "q2", "answer": "2", "images": None, "mode": "direct"},
        ]
    )
    pq.write_table(table, image_dir / "d.parquet")
    first, second = read_examples(image_dir / "d.parquet")
    assert first.images and first.mode == "think" and second.mode == "direct"
    bad = pa.Table.from_pylist([{"prompt": "q", "answer": "1", "mode": "x"}])
    pq.write_table(bad, image_dir / "bad.parquet")
    with pytest.raises(ValueError, match=r"bad.parquet:row 1: 'mode'"):
        read_examples(image_dir / "bad.parquet")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="data file not found"):
        read_examples(tmp_path / "none.jsonl")
