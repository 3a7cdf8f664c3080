"""``AlgoConfig``: the RL algorithm's knobs (advantage, policy loss, KL, TIS, sampling filters).

Loaded as the ``algo`` section of an RL experiment YAML through ``rl.config.from_dict``; every
check names the field it rejects.

    >>> cfg = AlgoConfig(loss="gspo")
    >>> cfg.agg_mode, cfg.clip_range
    ('seq-mean-token-mean', (0.0003, 0.0004))
    >>> AlgoConfig(clip_low=1.5)
    Traceback (most recent call last):
    ...
    rl.config.ConfigError: clip_low: must be in (0, 1), got 1.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from rl.config import check

__all__ = ["AdvantageName", "AggMode", "AlgoConfig", "KLName", "LossName"]

AdvantageName = Literal["grpo", "drgrpo"]
LossName = Literal["dapo", "gspo", "ppo"]
AggMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum"]
KLName = Literal["k1", "k2", "k3"]

# The aggregation each loss was published with; used when ``loss_agg_mode`` is left unset.
_DEFAULT_AGG: dict[str, str] = {
    "dapo": "token-mean",
    "ppo": "token-mean",
    "gspo": "seq-mean-token-mean",
}


@dataclass(frozen=True)
class AlgoConfig:
    """Algorithm settings; defaults follow DAPO for dense models (the SAIL-VL2 report's choice).

    Fields:
        advantage: ``grpo`` (group mean and std normalisation) or ``drgrpo`` (mean only).
        adv_eps: added to the group std before dividing (GRPO only).
        loss: ``dapo`` (PPO-clip with clip-higher ``clip_low``/``clip_high``), ``ppo``
            (symmetric PPO-clip, ``clip_low`` on both sides) or ``gspo`` (sequence-level
            ratio clipped with ``gspo_clip_low``/``gspo_clip_high``; the report's MoE choice).
        loss_agg_mode: how per-token losses become one number; unset means the loss's own
            (``token-mean`` for dapo/ppo, ``seq-mean-token-mean`` for gspo); see ``agg_mode``.
        clip_low, clip_high: PPO clip range of the token ratio: [1 - low, 1 + high].
        gspo_clip_low, gspo_clip_high: clip range of GSPO's sequence ratio.
        kl: estimator of KL to the frozen reference policy (``k1``/``k2``/``k3``) or null for
            no KL term (then no reference model is needed).
        kl_coef: weight of the KL term in the loss.
        tis_cap: truncated importance-sampling cap on exp(old_logp - rollout_logp); null turns
            the correction off.
        overlong_buffer: DAPO soft overlong punishment buffer in tokens; 0 turns it off.
        overlong_penalty: the penalty at (and beyond) the maximum length, as a positive size.
        mask_truncated: zero the loss mask of samples cut off at the length limit.
        dynamic_sampling: drop groups whose rewards are all equal and sample more (DAPO).
        max_extra_rounds: bound on the extra generation rounds dynamic sampling may take.
    """

    advantage: AdvantageName = "grpo"
    adv_eps: float = 1e-6
    loss: LossName = "dapo"
    loss_agg_mode: AggMode | None = None
    clip_low: float = 0.20
    clip_high: float = 0.28
    gspo_clip_low: float = 3e-4
    gspo_clip_high: float = 4e-4
    kl: KLName | None = None
    kl_coef: float = 0.001
    tis_cap: float | None = 2.0
    overlong_buffer: int = 0
    overlong_penalty: float = 1.0
    mask_truncated: bool = False
    dynamic_sampling: bool = True
    max_extra_rounds: int = 3

    def __post_init__(self) -> None:
        check(self.advantage in ("grpo", "drgrpo"), "advantage", "choose 'grpo' or 'drgrpo'")
        check(self.loss in _DEFAULT_AGG, "loss", "choose 'dapo', 'gspo' or 'ppo'")
        check(
            self.loss_agg_mode in (None, *get_args(AggMode)),
            "loss_agg_mode",
            "choose 'token-mean', 'seq-mean-token-mean' or 'seq-mean-token-sum'",
        )
        check(self.adv_eps > 0, "adv_eps", f"must be > 0, got {self.adv_eps}")
        for name in ("clip_low", "clip_high", "gspo_clip_low", "gspo_clip_high"):
            value = getattr(self, name)
            check(0 < value < 1, name, f"must be in (0, 1), got {value}")
        check(self.kl in (None, "k1", "k2", "k3"), "kl", "choose 'k1', 'k2', 'k3' or null")
        check(self.kl_coef >= 0, "kl_coef", f"must be >= 0, got {self.kl_coef}")
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
    def agg_mode(self) -> str:
        """The aggregation in force: ``loss_agg_mode`` or, when unset, the loss's own."""
        return self.loss_agg_mode or _DEFAULT_AGG[self.loss]

    @property
    def clip_range(self) -> tuple[float, float]:
        """(low, high) of the ratio clip for the chosen loss: ratio kept in [1-low, 1+high]."""
        if self.loss == "gspo":
            return (self.gspo_clip_low, self.gspo_clip_high)
        if self.loss == "ppo":
            return (self.clip_low, self.clip_low)
        return (self.clip_low, self.clip_high)
