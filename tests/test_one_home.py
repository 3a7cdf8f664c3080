"""Shared vocabulary has one home, policy/vocab.py: the image-token strings and the prompt
modes. rewards/ may import nothing of the project, so it keeps its own
copies (rewards/format_reward.py, rewards/records.py), which must equal the homes."""

from __future__ import annotations

import ast
from pathlib import Path

from policy.vocab import IMAGE_TOKENS, MODES
from rewards.format_reward import IMAGE_TOKENS as REWARD_IMAGE_TOKENS
from rewards.records import MODES as REWARD_MODES

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policy", "rollout", "rl", "sft", "rewards")
HOMES = {
    "image tokens": {"policy/vocab.py", "rewards/format_reward.py"},
    "modes": {"policy/vocab.py", "rewards/records.py"},
}


def _spells_modes(elts: list[ast.expr]) -> bool:
    values = {e.value for e in elts if isinstance(e, ast.Constant)}
    return len(elts) == len(MODES) and values == set(MODES)


def _definitions(path: Path) -> set[str]:
    """Which shared vocabulary ``path`` spells out itself."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and node.value in IMAGE_TOKENS:
            found.add("image tokens")
        if isinstance(node, (ast.Tuple, ast.List)) and _spells_modes(node.elts):
            found.add("modes")
        if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if _spells_modes(elts):
                found.add("modes")
    return found


def test_rewards_copies_equal_the_homes():
    assert tuple(REWARD_IMAGE_TOKENS) == tuple(IMAGE_TOKENS)
    assert tuple(REWARD_MODES) == tuple(MODES)


def test_no_module_outside_the_homes_spells_the_vocabulary():
    bad = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for what in _definitions(path):
                if rel not in HOMES[what]:
                    bad.append(
                        f"{rel} spells the {what}; import them from {sorted(HOMES[what])[0]}"
                    )
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_copy(tmp_path):
    probe = tmp_path / "m.py"
    probe.write_text('X = ("think", "direct")\nT = "<img>"\nM = Literal["direct", "think"]\n')
    assert _definitions(probe) == {"modes", "image tokens"}
