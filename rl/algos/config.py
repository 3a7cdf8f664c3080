"""``AlgoConfig``: the RL algorithm as one unit: an advantage estimator and a policy loss
(each a registered, tagged variant with its own options), KL to the reference policy, TIS and
the sampling-side rules.

Loaded as the ``algo`` section of an RL experiment YAML through ``rl.config.from_dict``. The
loss and the advantage are tagged unions: ``loss: gspo`` or
``loss: {name: gspo, clip_high: 5e-4}``; an option of another variant is rejected with an
error naming the key.

    >>> cfg = AlgoConfig(loss="gspo")
    >>> cfg.loss.agg_mode, (cfg.loss.clip_low, cfg.loss.clip_high)
    ('seq-mean-token-mean', (0.0003, 0.0004))
    >>> sorted(AlgoConfig(kl="k3").needs)
    ['old_logprobs', 'ref_logprobs', 'rollout_logprobs']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from rl.algos.registry import ADVANTAGES, LOSSES, AdvantageConfig, LossConfig
from rl.config import ConfigError, check

__all__ = ["AlgoConfig", "KLMode", "KLName", "make_unit"]

KLName = Literal["k1", "k2", "k3"]
KLMode = Literal["loss", "reward"]
DEFAULT_KL_COEF = 0.001


def make_unit(registry: dict[str, type], value: object, where: str) -> object:
    """A unit from its name (a string) or the unit itself."""
    if not isinstance(value, str):
        return value
    if value not in registry:
        choices = ", ".join(repr(k) for k in registry)
        raise ConfigError(f"{where}: {value!r} is not allowed; choose one of {choices}")
    return registry[value]()


@dataclass(frozen=True)
class AlgoConfig:
    """Algorithm settings; defaults follow DAPO for dense models (the SAIL-VL2 report's choice).

    Fields:
        advantage: the estimator (``grpo`` with option ``eps``, ``drgrpo``); docs/algorithms.md.
        loss: the policy loss (``dapo``, ``ppo``, ``gspo``, ``cispo``, ``sapo``) with its
            options, ``agg_mode`` among them.
        kl: estimator of KL to the frozen reference policy (``k1``/``k2``/``k3``) or null for
            no KL (then no reference model is held).
        kl_coef: weight of the KL (only with ``kl`` set; default 0.001).
        kl_mode: ``loss`` (a term added to the loss, aggregated like it) or ``reward`` (a
            per-token penalty in the reward; only with ``kl`` set; default ``loss``).
        tis_cap: truncated importance-sampling cap on exp(old_logp - rollout_logp); null turns
            the correction off.
        overlong_buffer: DAPO soft overlong punishment buffer in tokens; 0 turns it off.
        overlong_penalty: the penalty at (and beyond) the maximum length, as a positive size.
        mask_truncated: zero the loss mask of samples cut off at the length limit.
        dynamic_sampling: drop groups whose rewards are all equal and sample more (DAPO).
        max_extra_rounds: bound on the extra generation rounds dynamic sampling may take.
    """

    advantage: AdvantageConfig = field(default_factory=ADVANTAGES["grpo"])
    loss: LossConfig = field(default_factory=LOSSES["dapo"])
    kl: KLName | None = None
    kl_coef: float | None = None
    kl_mode: KLMode | None = None
    tis_cap: float | None = 2.0
    overlong_buffer: int = 0
    overlong_penalty: float = 1.0
    mask_truncated: bool = False
    dynamic_sampling: bool = True
    max_extra_rounds: int = 3

    def __post_init__(self) -> None:
        # Code may name a variant with its default options: AlgoConfig(loss="gspo").
        object.__setattr__(self, "loss", make_unit(LOSSES, self.loss, "loss"))
        object.__setattr__(self, "advantage", make_unit(ADVANTAGES, self.advantage, "advantage"))
        check(type(self.loss) in LOSSES.values(), "loss", f"not a registered loss: {self.loss!r}")
        check(
            type(self.advantage) in ADVANTAGES.values(),
            "advantage",
            f"not a registered advantage: {self.advantage!r}",
        )
        check(self.kl in (None, "k1", "k2", "k3"), "kl", "choose 'k1', 'k2', 'k3' or null")
        for key in ("kl_coef", "kl_mode"):
            check(
                self.kl is not None or getattr(self, key) is None,
                key,
                "is an option of the KL term, which is off (kl: null); set kl: k1, k2 or k3",
            )
        check(self.kl_weight >= 0, "kl_coef", f"must be >= 0, got {self.kl_coef}")
        check(self.kl_mode in (None, "loss", "reward"), "kl_mode", "choose 'loss' or 'reward'")
        # A cap below 1 would shrink the loss of tokens where both engines agree exactly.
        check(
            self.tis_cap is None or self.tis_cap >= 1,
            "tis_cap",
            f"must be >= 1 or null (off), got {self.tis_cap}",
        )
        check(
            self.overlong_buffer >= 0,
            "overlong_buffer",
            f"must be >= 0, got {self.overlong_buffer}",
        )
        check(
            self.overlong_penalty >= 0,
            "overlong_penalty",
            f"must be >= 0 (it is subtracted), got {self.overlong_penalty}",
        )
        check(
            self.max_extra_rounds >= 0,
            "max_extra_rounds",
            f"must be >= 0, got {self.max_extra_rounds}",
        )

    @property
    def kl_weight(self) -> float:
        """The KL coefficient in force (0 without KL)."""
        if self.kl is None:
            return 0.0
        return DEFAULT_KL_COEF if self.kl_coef is None else self.kl_coef

    @property
    def kl_in_reward(self) -> bool:
        return self.kl is not None and self.kl_mode == "reward"

    @property
    def needs(self) -> frozenset[str]:
        """Inputs the learner must provide (``policy.loss_inputs``): the loss's and the
        advantage's own, reference logprobs for KL, the engine's logprobs (always carried:
        TIS and the mismatch metrics use them)."""
        out = set(self.loss.needs) | set(self.advantage.needs) | {"rollout_logprobs"}
        if self.kl is not None:
            out |= {"ref_logprobs", "old_logprobs"} if self.kl_in_reward else {"ref_logprobs"}
        return frozenset(out)
