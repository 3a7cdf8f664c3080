"""From scored completions to the learner's train batch (pure functions, no Ray).

A *group* is the ``n`` completions of one prompt with their rewards. The driver keeps groups
(dynamic sampling drops uninformative ones), then ``train_sequences`` turns them into one
record per completion: prompt + response token ids, a loss mask over the response, and the
per-token advantage and sampling logprob the loss needs.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from typing import Any

import torch

from policy.batch import Sequence
from rl.algos import AlgoConfig, mask_truncated, overlong_penalty


@dataclass(frozen=True)
class Prompt:
    """One prompt as both sides see it: the example, its token ids and its image tiles."""

    prompt_id: str
    example: Any  # policy.data.Example
    mode: str
    pixel_values: torch.Tensor | None = None


@dataclass(frozen=True)
class Group:
    """The completions of one prompt and their scores (same order)."""

    prompt: Prompt
    completions: tuple[Any, ...]  # rollout.types.Completion
    results: tuple[Any, ...]  # rewards.records.RewardResult

    @property
    def rewards(self) -> list[float]:
        return [r.reward for r in self.results]


def shaped_rewards(groups: Seq[Group], cfg: AlgoConfig, max_tokens: int) -> torch.Tensor:
    """Flat rewards (groups contiguous) plus DAPO's soft overlong penalty when configured."""
    rewards = torch.tensor([r for g in groups for r in g.rewards], dtype=torch.float32)
    if cfg.overlong_buffer:
        lengths = torch.tensor([len(c.token_ids) for g in groups for c in g.completions])
        rewards = rewards + overlong_penalty(
            lengths, max_tokens, cfg.overlong_buffer, cfg.overlong_penalty
        )
    return rewards


def train_sequences(
    groups: Seq[Group], cfg: AlgoConfig, group_size: int, max_tokens: int
) -> tuple[list[Sequence], torch.Tensor]:
    """One ``policy.batch.Sequence`` per completion, and the advantages used.

    Position t of every per-token list refers to token t of prompt + response; only response
    tokens carry loss (and none of a truncated sample when ``cfg.mask_truncated``).

        >>> from types import SimpleNamespace as NS
        >>> c = lambda ids, r: NS(prompt_token_ids=(1, 2), token_ids=ids, logprobs=(-0.5,) * len(ids),
        ...                       finish_reason="stop")
        >>> res = lambda r: NS(reward=r)
        >>> g = Group(Prompt("p", None, "think"), (c((5, 6), 1), c((7,), 0)), (res(1.0), res(0.0)))
        >>> seqs, adv = train_sequences([g], AlgoConfig(advantage="drgrpo"), 2, 16)
        >>> seqs[0].input_ids, seqs[0].loss_mask, seqs[0].extras["advantages"]
        ([1, 2, 5, 6], [0, 0, 1, 1], [0.0, 0.0, 0.5, 0.5])
        >>> seqs[1].extras["rollout_logprobs"]
        [0.0, 0.0, -0.5]
    """
    for g in groups:
        if len(g.completions) != group_size or len(g.results) != group_size:
            raise ValueError(
                f"prompt {g.prompt.prompt_id}: {len(g.completions)} completions and "
                f"{len(g.results)} scores, expected {group_size} of each"
            )
    advantages = cfg.advantage.compute(shaped_rewards(groups, cfg, max_tokens), group_size)
    comps = [c for g in groups for c in g.completions]
    keep = torch.ones(len(comps), 1)
    if cfg.mask_truncated:
        keep = mask_truncated(keep, [c.finish_reason for c in comps])
    sequences = []
    i = 0
    for g in groups:
        for comp in g.completions:
            p, r = len(comp.prompt_token_ids), len(comp.token_ids)
            trained = bool(keep[i, 0])
            adv = float(advantages[i])
            sequences.append(
                Sequence(
                    input_ids=[*comp.prompt_token_ids, *comp.token_ids],
                    loss_mask=[0] * p + [int(trained)] * r,
                    pixel_values=g.prompt.pixel_values,
                    extras={
                        "advantages": [0.0] * p + [adv] * r,
                        "rollout_logprobs": [0.0] * p + [float(x) for x in comp.logprobs],
                    },
                )
            )
            i += 1
    return sequences, advantages


def group_metrics(groups: Seq[Group]) -> dict[str, float]:
    """Reward, component, outcome and length statistics of the kept groups."""
    results = [r for g in groups for r in g.results]
    comps = [c for g in groups for c in g.completions]
    if not results:
        return {}
    out: dict[str, float] = {
        "reward/mean": sum(r.reward for r in results) / len(results),
        "response/length_mean": sum(len(c.token_ids) for c in comps) / len(comps),
        "response/length_max": max(len(c.token_ids) for c in comps),
        "response/truncated_frac": sum(c.finish_reason == "length" for c in comps) / len(comps),
    }
    names = sorted({k for r in results for k in r.components})
    for name in names:
        vals = [r.components[name] for r in results if name in r.components]
        out[f"reward/{name}"] = sum(vals) / len(vals)
    for outcome in ("ok", "timeout", "error", "no_answer"):
        out[f"outcome/{outcome}"] = sum(r.outcome == outcome for r in results)
    return out
