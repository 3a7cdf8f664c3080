"""The import layering of the design: each package may only reach what it is allowed to."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = {"rl", "rewards", "rollout", "policy", "sft"}

# package -> top-level modules it must never import
FORBIDDEN = {
    "rewards": PROJECT - {"rewards"},
    "policy": {"vllm", "ray", "rollout", "rl", "sft", "rewards"},
    "rollout": {"deepspeed", "ray", "rl", "sft", "rewards"},
    "sft": {"vllm", "ray", "rollout", "rl"},
    "rl": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"package {package} has no modules"
    bad = []
    for path in files:
        hit = _imports(path) & FORBIDDEN[package]
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, "layering broken:\n" + "\n".join(bad)


def test_only_rl_knows_ray():
    for package in PROJECT - {"rl"}:
        for path in (ROOT / package).rglob("*.py"):
            assert "ray" not in _imports(path), f"{path} imports ray"


def test_layering_check_sees_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("import ray.util\nfrom vllm import LLM\nfrom . import x\n")
    assert _imports(probe) == {"ray", "vllm"}
