"""Every policy loss and advantage estimator by name. Adding one: a file holding its unit
(``rl.algos.unit``) plus one line here; the config's tagged unions follow from these dicts.
"""

from __future__ import annotations

from typing import Union

from rl.algos.advantages import DrGrpo, Grpo
from rl.algos.cispo import Cispo
from rl.algos.gspo import Gspo
from rl.algos.ppo_clip import Dapo, Ppo
from rl.algos.sapo import Sapo

__all__ = ["ADVANTAGES", "LOSSES", "AdvantageConfig", "LossConfig"]

LOSSES: dict[str, type] = {
    "dapo": Dapo,
    "ppo": Ppo,
    "gspo": Gspo,
    "cispo": Cispo,
    "sapo": Sapo,
}

ADVANTAGES: dict[str, type] = {
    "grpo": Grpo,
    "drgrpo": DrGrpo,
}

# Tagged unions for rl.config: the variant is picked by its ``name``.
LossConfig = Union[tuple(LOSSES.values())]  # noqa: UP007
AdvantageConfig = Union[tuple(ADVANTAGES.values())]  # noqa: UP007
