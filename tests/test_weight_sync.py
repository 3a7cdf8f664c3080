"""Weight sync behind one interface (rl.cluster.weight_sync): the factory picks the
implementation from ``rollout.weight_transfer``, and no other module looks at the
transport's name (the sync itself runs in tests/test_rl_integration.py and
tests/test_weight_broadcast.py)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import get_args, get_type_hints

import pytest

from rl.cluster.weight_sync import BroadcastSync, LocalSync, resolve_transport, weight_sync
from rollout.config import RolloutConfig

ROOT = Path(__file__).resolve().parents[1]
TRANSPORT_NAMES = {"local", "nccl", "gloo"}
# Modules that may compare a value with a transport name, and why.
ALLOWED = {
    "rl/cluster/weight_sync.py": "the factory: the one place the choice is made",
    "policy/learner.py": "the learner's own torch.distributed backend, not weight sync",
}


@pytest.mark.parametrize(
    ("setting", "on_cuda", "kind", "transport"),
    [
        ("auto", False, BroadcastSync, "gloo"),
        ("auto", True, BroadcastSync, "nccl"),
        ("local", False, LocalSync, "local"),
        ("local", True, LocalSync, "local"),
        ("gloo", False, BroadcastSync, "gloo"),
        ("gloo", True, BroadcastSync, "gloo"),
        ("nccl", True, BroadcastSync, "nccl"),
    ],
)
def test_factory_picks_the_implementation(setting, on_cuda, kind, transport):
    learners, engines = ["rank0", "rank1"], ["engine0"]
    sync = weight_sync(RolloutConfig(weight_transfer=setting), on_cuda, learners, engines)
    assert type(sync) is kind and sync.transport == transport
    assert sync.learners is learners and sync.engines is engines


def test_nccl_without_cuda_is_refused_with_the_alternatives():
    with pytest.raises(RuntimeError, match="needs CUDA GPUs.*'gloo'.*'local'"):
        weight_sync(RolloutConfig(weight_transfer="nccl"), False, [], [])


def test_every_configurable_setting_resolves():
    settings = get_args(get_type_hints(RolloutConfig)["weight_transfer"])
    assert set(settings) == {"auto", *TRANSPORT_NAMES}
    for setting in settings:
        assert resolve_transport(setting, engines_on_cuda=True) in TRANSPORT_NAMES


def _compares_transport(node: ast.AST) -> bool:
    if not isinstance(node, ast.Compare):
        return False
    for side in [node.left, *node.comparators]:
        values = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
        if any(isinstance(v, ast.Constant) and v.value in TRANSPORT_NAMES for v in values):
            return True
    return False


def _offenders() -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for package in ("rl", "rollout", "policy"):
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            lines = [n.lineno for n in ast.walk(tree) if _compares_transport(n)]
            # reads of the setting (a CLI flag that passes it on as an override is not one)
            reads = [
                n.lineno
                for n in ast.walk(tree)
                if isinstance(n, ast.Attribute)
                and n.attr == "weight_transfer"
                and not (isinstance(n.value, ast.Name) and n.value.id == "args")
            ]
            if lines or reads:
                found[str(path.relative_to(ROOT))] = lines + reads
    return found


def test_no_other_module_checks_the_transport_name():
    found = _offenders()
    assert "rl/cluster/weight_sync.py" in found  # the check sees the factory's own choice
    stray = {path: lines for path, lines in found.items() if path not in ALLOWED}
    assert not stray, f"transport names compared outside rl/cluster/weight_sync.py: {stray}"


def test_transport_check_sees_comparisons():
    tree = ast.parse("a == 'nccl'\nb in ('x', 'gloo')\n'local' != c\nd == 'auto'\n")
    assert [_compares_transport(n.value) for n in tree.body] == [True, True, True, False]
    assert not _compares_transport(ast.parse("x = 'nccl'").body[0].value)
