"""From scored completions to the learner's train batch (pure functions, no Ray).

A *group* is the ``n`` completions of one prompt with their rewards. The driver keeps groups
(dynamic sampling drops uninformative ones), then ``train_sequences`` turns them into one
record per completion: prompt + response token ids, a loss mask over the response, the
sequence's advantage (one number: the loss broadcasts it over the tokens) and the sampling
logprobs (a float32 tensor) the loss needs.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass, replace
from typing import Any

import torch

from policy.batch import Sequence
from rl.algos import AlgoConfig, mask_truncated, overlong_penalty


@dataclass(frozen=True)
class Prompt:
    """One prompt as both sides see it: the example, its token ids and its image tiles
    (rendered, tiled and tokenised once, by ``rl.prompts.PromptBuilder``; ``input_ids``
    None where rendering failed: the engine then reports the prompt as a failure)."""

    prompt_id: str
    example: Any  # policy.data.Example
    mode: str
    pixel_values: torch.Tensor | None = None
    input_ids: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Group:
    """The completions of one prompt and their scores (same order); ``shaped``: the rewards
    after shaping (``with_shaped``), computed once per group."""

    prompt: Prompt
    completions: tuple[Any, ...]  # rollout.types.Completion
    results: tuple[Any, ...]  # rewards.records.RewardResult
    shaped: tuple[float, ...] | None = None

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


def with_shaped(groups: Seq[Group], cfg: AlgoConfig, max_tokens: int) -> list[Group]:
    """The groups with their shaped rewards attached: the one place they are computed."""
    flat = shaped_rewards(groups, cfg, max_tokens).tolist()
    out, i = [], 0
    for g in groups:
        out.append(replace(g, shaped=tuple(flat[i : i + len(g.results)])))
        i += len(g.results)
    return out


def flat_shaped(groups: Seq[Group]) -> torch.Tensor:
    """The attached shaped rewards, flat with groups contiguous (float32, as computed)."""
    if any(g.shaped is None for g in groups):
        raise ValueError("groups carry no shaped rewards: attach them with with_shaped()")
    return torch.tensor([r for g in groups for r in g.shaped], dtype=torch.float32)


def train_sequences(
    groups: Seq[Group], cfg: AlgoConfig, group_size: int
) -> tuple[list[Sequence], torch.Tensor]:
    """One ``policy.batch.Sequence`` per completion, and the advantages used.

    Position t of every per-token value refers to token t of prompt + response; only response
    tokens carry loss (and none of a truncated sample when ``cfg.mask_truncated``). The
    advantage is per sequence (``Sequence.scalars``); the loss broadcasts it over the loss
    mask (``rl.algos.token_advantages``). Groups carry shaped rewards (``with_shaped``).

        >>> from types import SimpleNamespace as NS
        >>> c = lambda ids, r: NS(prompt_token_ids=(1, 2), token_ids=ids, logprobs=(-0.5,) * len(ids),
        ...                       finish_reason="stop")
        >>> res = lambda r: NS(reward=r)
        >>> g = Group(Prompt("p", None, "think"), (c((5, 6), 1), c((7,), 0)), (res(1.0), res(0.0)))
        >>> cfg = AlgoConfig(advantage="drgrpo")
        >>> seqs, adv = train_sequences(with_shaped([g], cfg, 16), cfg, 2)
        >>> seqs[0].input_ids, seqs[0].loss_mask, seqs[0].scalars["advantages"]
        ([1, 2, 5, 6], [0, 0, 1, 1], 0.5)
        >>> seqs[1].extras["rollout_logprobs"]
        tensor([ 0.0000,  0.0000, -0.5000])
    """
    for g in groups:
        if len(g.completions) != group_size or len(g.results) != group_size:
            raise ValueError(
                f"prompt {g.prompt.prompt_id}: {len(g.completions)} completions and "
                f"{len(g.results)} scores, expected {group_size} of each"
            )
    advantages = cfg.advantage.compute(flat_shaped(groups), group_size)
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
            rollout = torch.zeros(p + r, dtype=torch.float32)
            rollout[p:] = torch.tensor(comp.logprobs, dtype=torch.float32)
            sequences.append(
                Sequence(
                    input_ids=[*comp.prompt_token_ids, *comp.token_ids],
                    loss_mask=[0] * p + [int(trained)] * r,
                    pixel_values=g.prompt.pixel_values,
                    extras={"rollout_logprobs": rollout},
                    scalars={"advantages": float(advantages[i])},
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
