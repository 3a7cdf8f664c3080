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
}

# rl/ is in rooms (docs/architecture.md): room -> what its modules must never import, as
# dotted prefixes (a third-party module, a project package, or another room ``rl.<room>``).
# ``rl/cluster`` is the only code of the project that may import Ray.
ROOMS = ("config", "algos", "tasks", "run", "loop", "cluster", "recipe", "bench", "cli")
HEAVY = {"ray", "vllm", "deepspeed", "torch.distributed"}


def _rooms(*names: str) -> set[str]:
    return {f"rl.{name}" for name in names}


def _all_rooms_but(*names: str) -> set[str]:
    return _rooms(*(r for r in ROOMS if r not in names))


RL_RULES = {
    # YAML <-> dataclasses: the base every room stands on
    "config": HEAVY | {"torch"} | (PROJECT - {"rl"}) | _all_rooms_but("config"),
    # pure algorithm math, tested on CPU
    "algos": HEAVY | {"rollout", "rewards", "sft"} | _all_rooms_but("algos", "config"),
    # procedural demo data: nothing of the project but itself
    "tasks": HEAVY | {"torch"} | (PROJECT - {"rl"}) | _all_rooms_but("tasks"),
    # run plumbing: config, checkpoints, run log, preflight
    "run": HEAVY | _rooms("loop", "cluster", "recipe", "bench", "cli"),
    # the driver and what it drives: actors only through rl.loop.handles
    "loop": HEAVY | _rooms("cluster", "recipe", "bench", "cli"),
    # Ray actors and placement
    "cluster": _rooms("recipe", "bench", "cli"),
    # pipeline, SFT stage, offline jobs, reports: stages run as their own processes
    "recipe": {"ray"} | _rooms("cluster", "bench", "cli"),
    # benchmarks: entry points like the CLI
    "bench": {"ray"} | _rooms("recipe", "cli"),
    # the sailrl command: may import every room, not Ray itself
    "cli": {"ray"},
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


def _modules(path: Path, package: tuple[str, ...] | None = None) -> set[str]:
    """Every module ``path`` imports, dotted in full (``from a import b`` gives ``a`` and
    ``a.b``; relative imports resolved against ``package``, by default the file's own)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(package or path.relative_to(ROOT).parent.parts)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _hits(imported: set[str], forbidden: set[str]) -> set[str]:
    return {m for m in imported for f in forbidden if m == f or m.startswith(f + ".")}


def _room_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT / "rl").parts
    return parts[0] if len(parts) > 1 else None


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


def test_every_room_has_a_rule():
    assert set(RL_RULES) == set(ROOMS)
    assert all(RL_RULES.values()), [room for room, rule in RL_RULES.items() if not rule]


def test_every_rl_module_belongs_to_a_room():
    loose = []
    for path in sorted((ROOT / "rl").rglob("*.py")):
        if path != ROOT / "rl" / "__init__.py" and _room_of(path) not in RL_RULES:
            loose.append(str(path.relative_to(ROOT)))
    assert not loose, f"modules outside the rooms {ROOMS}: {loose}"
    for room in ROOMS:
        assert (ROOT / "rl" / room / "__init__.py").is_file(), f"room rl/{room} is not a package"


@pytest.mark.parametrize("room", ROOMS)
def test_rl_room_respects_its_rule(room):
    bad = []
    for path in sorted((ROOT / "rl" / room).rglob("*.py")):
        hit = _hits(_modules(path), RL_RULES[room])
        if hit:
            bad.append(f"{path.relative_to(ROOT)} imports {sorted(hit)}")
    assert not bad, f"rl/{room} breaks its rule:\n" + "\n".join(bad)


def test_only_rl_cluster_knows_ray():
    knows = []
    for package in PROJECT:
        for path in sorted((ROOT / package).rglob("*.py")):
            inside = package == "rl" and _room_of(path) == "cluster"
            if not inside and _hits(_modules(path), {"ray"}):
                knows.append(str(path.relative_to(ROOT)))
    assert not knows, f"only rl/cluster may import ray: {knows}"


def test_room_check_sees_submodules_and_relative_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text(
        "from torch import distributed\nimport torch.distributed as dist\n"
        "from ..cluster import actors\nfrom . import prompts\n"
    )
    found = _modules(probe, package=("rl", "loop"))
    assert {"torch.distributed", "rl.cluster.actors", "rl.loop.prompts"} <= found
    assert _hits(found, RL_RULES["loop"]) >= {"torch.distributed", "rl.cluster.actors"}
    assert not _hits({"torch.nn", "rl.looped", "rayon"}, {"torch.distributed", "rl.loop", "ray"})


def test_layering_check_sees_imports(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text("import ray.util\nfrom vllm import LLM\nfrom . import x\n")
    assert _imports(probe) == {"ray", "vllm"}
