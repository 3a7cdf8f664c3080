"""Bad inputs of `sailrl rl`: each row exits 2 with one short line naming the key, file or
row, before any actor (or Ray) starts. Rows run the real CLI in-process; the cluster is
replaced by a tripwire, so a row that got past the checks fails instead of starting Ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rl.cluster.session
from rl.cli import main

GOOD_ROW = {"prompt": "What is 1+1?", "answer": "2", "mode": "think"}


class ActorStarted(AssertionError):
    pass


def _tripwire(*_args, **_kwargs):
    raise ActorStarted("the checks let this input through: an actor would have started")


def _write_rows(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _plugin(tmp: Path, name: str, source: str) -> str:
    (tmp / f"{name}.py").write_text(source)
    return name


def _checkpoint(tmp: Path, complete: bool) -> Path:
    ckpt = tmp / "run" / "checkpoints" / "step-000002"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"step": 2, "cursor": 0}))
    if complete:
        (ckpt / "COMPLETE").write_text("ok\n")
    return ckpt


def _init_model(tmp: Path, preset: str) -> str:
    target = tmp / "run" / "init-model"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "sailrl-source.json").write_text(
        json.dumps({"preset": preset, "seed": 0, "overrides": {}})
    )
    return ""


# (id, setup(tmp) -> extra CLI args, expected exit code, phrase in the message)
CASES = [
    ("missing train file", lambda t: ["data.train=" + str(t / "nope.jsonl")], 2, "data.train: "),
    ("empty train file", lambda t: ["data.train=" + str(_e(t))], 2, "is empty"),
    ("blank lines only", lambda t: ["data.train=" + str(_blank(t))], 2, "holds no examples"),
    ("invalid JSON row", lambda t: ["data.train=" + str(_badjson(t))], 2, "bad.jsonl:2"),
    ("row without answer", lambda t: ["data.train=" + str(_noanswer(t))], 2, "missing 'answer'"),
    ("not UTF-8", lambda t: ["data.train=" + str(_latin1(t))], 2, "not UTF-8"),
    (
        "train is a directory without data",
        lambda t: ["data.train=" + str(_emptydir(t))],
        2,
        "no data files",
    ),
    ("empty eval file", lambda t: ["data.eval=" + str(_e(t))], 2, "data.eval: "),
    ("NaN temperature", lambda t: ["rl.temperature=.nan"], 2, "rl.temperature: must be a finite"),
    ("negative temperature", lambda t: ["rl.temperature=-1"], 2, "rl.temperature: must be > 0"),
    ("top_p 5", lambda t: ["rl.top_p=5"], 2, "rl.top_p: must be in (0, 1]"),
    ("kl_coef inf", lambda t: ["algo.kl_coef=.inf"], 2, "algo.kl_coef: must be a finite"),
    ("ray.num_cpus 0", lambda t: ["ray.num_cpus=0"], 2, "ray.num_cpus"),
    ("negative reward cpus", lambda t: ["ray.reward_cpus=-1"], 2, "ray.reward_cpus"),
    ("more CPUs than Ray has", lambda t: ["ray.learner_cpus=64", "ray.num_cpus=4"], 2, "CPUs"),
    ("GPUs on a CPU machine", lambda t: ["ray.learner_gpus=1"], 2, "GPUs"),
    ("unknown key", lambda t: ["rl.stepz=3"], 2, "did you mean 'steps'"),
    ("unknown reward", lambda t: ["rewards.sets.default.weights={nope: 1.0}"], 2, "'nope'"),
    (
        "plug-in fails to import",
        lambda t: ["rewards.custom={mine: no_such_module_xyz:score}", *_uses("mine")],
        2,
        "cannot import module",
    ),
    (
        "plug-in without the function",
        lambda t: [
            f"rewards.custom={{mine: {_plugin(t, 'plug_a', 'x = 1')}:score}}",
            *_uses("mine"),
        ],
        2,
        "has no attribute",
    ),
    (
        "plug-in with a wrong signature",
        lambda t: [
            f"rewards.custom={{mine: {_plugin(t, 'plug_b', 'def score(text):' + chr(10) + '    return 1.0')}:score}}",
            *_uses("mine"),
        ],
        2,
        "must accept (completion, answer, metadata)",
    ),
    (
        "resume path missing",
        lambda t: ["--resume", str(t / "run" / "checkpoints" / "step-000009")],
        2,
        "does not exist",
    ),
    (
        "resume an incomplete checkpoint",
        lambda t: ["--resume", str(_checkpoint(t, complete=False))],
        2,
        "incomplete",
    ),
    ("resume a step that is not there", lambda t: ["--resume", "7"], 2, "does not exist"),
    (
        "model.path missing",
        lambda t: ["model.path=" + str(t / "m"), "model.preset=null"],
        2,
        "model.path",
    ),
    (
        "model.path latest without checkpoints",
        lambda t: ["model.path=" + str(t / "run"), "model.preset=null"],
        2,
        "model.path",
    ),
    ("unknown preset", lambda t: ["model.preset=huge"], 2, "model.preset: unknown preset 'huge'"),
    (
        "preset differs from the run's init-model",
        lambda t: [_init_model(t, "tiny-moe"), "model.preset=tiny"][1:],
        2,
        "model.preset: ",
    ),
]


def _emptydir(t):
    (t / "nodata").mkdir(exist_ok=True)
    return t / "nodata"


def _e(t: Path) -> Path:
    (t / "empty.jsonl").write_text("")
    return t / "empty.jsonl"


def _blank(t: Path) -> Path:
    (t / "blank.jsonl").write_text("\n\n  \n")
    return t / "blank.jsonl"


def _badjson(t: Path) -> Path:
    (t / "bad.jsonl").write_text(json.dumps(GOOD_ROW) + "\n{not json\n")
    return t / "bad.jsonl"


def _noanswer(t: Path) -> Path:
    return _write_rows(t / "noanswer.jsonl", [{"prompt": "hi"}])


def _latin1(t: Path) -> Path:
    (t / "latin1.jsonl").write_bytes(
        json.dumps({"prompt": "caf\u00e9", "answer": "1"}, ensure_ascii=False).encode("latin-1")
    )
    return t / "latin1.jsonl"


def _uses(name: str) -> list[str]:
    return ["rewards.sets={default: {weights: {" + name + ": 1.0}}}"]


@pytest.fixture
def base(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(rl.cluster.session, "connect", _tripwire)
    train = _write_rows(tmp_path / "train.jsonl", [GOOD_ROW] * 4)
    config = tmp_path / "exp.yaml"
    config.write_text(
        f"run: {{dir: {tmp_path / 'run'}}}\n"
        f"model: {{preset: tiny}}\n"
        f"data: {{train: {train}}}\n"
        "rewards: {sets: {default: {weights: {format: 1.0}}}}\n"
        "ray: {num_cpus: 4}\n"
    )
    return config


@pytest.mark.parametrize(
    ("setup", "code", "phrase"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_exits_before_any_actor(base, tmp_path, capsys, setup, code, phrase):
    import ray

    extra = setup(tmp_path)
    flags = [
        a for i, a in enumerate(extra) if a == "--resume" or (i and extra[i - 1] == "--resume")
    ]
    overrides = [a for a in extra if a not in flags]
    assert main(["rl", "--config", str(base), *flags, *overrides]) == code
    err = capsys.readouterr().err.strip()
    assert phrase in err, err
    assert err.startswith("sailrl: error: ") and len(err.splitlines()) <= 2, err
    assert "Traceback" not in err
    assert not ray.is_initialized()


def test_good_input_gets_to_the_cluster(base, tmp_path):
    """The base config passes every check (the tripwire is what stops it)."""
    with pytest.raises(ActorStarted):
        main(["rl", "--config", str(base)])


def test_debug_shows_the_traceback(base, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SAILRL_DEBUG", "1")
    assert main(["rl", "--config", str(base), "rl.top_p=5"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "rl.top_p" in err
