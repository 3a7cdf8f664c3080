"""From scored completions to the learner's train batch (pure functions, no Ray).

A *group* is the ``n`` completions of one prompt with their rewards. The driver keeps groups
(dynamic sampling drops uninformative ones), then ``train_groups`` turns each into the record
a learner rank needs (``TrainGroup``: the prompt once, then per sample its response ids,
engine logprobs as float32, one advantage and whether it trains), ``deal`` splits them over
the ranks, and each rank builds its ``policy.batch.Sequence`` records (``sequences()``).
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
    (rendered, tiled and tokenised once, by ``rl.loop.prompts.PromptBuilder``; ``input_ids``
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


@dataclass(frozen=True)
class TrainGroup:
    """Samples of one prompt as a learner rank needs them, the prompt (ids and tiles) once:
    the record the driver sends instead of one ``Sequence`` per sample; ``sequences()``
    builds those on the rank. ``rollout_logprobs``: the responses' engine logprobs,
    concatenated (float32); ``advantages``/``trained``: one per sample."""

    prompt_ids: tuple[int, ...]
    pixel_values: torch.Tensor | None
    responses: tuple[tuple[int, ...], ...]
    rollout_logprobs: torch.Tensor
    advantages: tuple[float, ...]
    trained: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.responses)

    def _starts(self) -> list[int]:
        starts = [0]
        for ids in self.responses:
            starts.append(starts[-1] + len(ids))
        return starts

    def subset(self, picked: Seq[int]) -> TrainGroup:
        """The samples ``picked`` (in that order), their logprobs copied out compactly."""
        if list(picked) == list(range(len(self))):
            return self
        s = self._starts()
        return TrainGroup(
            self.prompt_ids,
            self.pixel_values,
            tuple(self.responses[k] for k in picked),
            torch.cat([self.rollout_logprobs[s[k] : s[k + 1]] for k in picked]),
            tuple(self.advantages[k] for k in picked),
            tuple(self.trained[k] for k in picked),
        )

    def sequences(self) -> list[Sequence]:
        """One ``policy.batch.Sequence`` per sample: prompt + response ids, the loss mask over
        the response (none of an untrained sample), the engine logprobs (0 on the prompt)
        and the advantage, one number (``Sequence.scalars``) the loss broadcasts."""
        p, s, out = len(self.prompt_ids), self._starts(), []
        for k, (ids, adv, trained) in enumerate(zip(self.responses, self.advantages, self.trained)):
            rollout = torch.zeros(p + len(ids), dtype=torch.float32)
            rollout[p:] = self.rollout_logprobs[s[k] : s[k + 1]]
            out.append(
                Sequence(
                    input_ids=[*self.prompt_ids, *ids],
                    loss_mask=[0] * p + [int(trained)] * len(ids),
                    pixel_values=self.pixel_values,
                    extras={"rollout_logprobs": rollout},
                    scalars={"advantages": adv},
                )
            )
        return out


def deal(groups: Seq[TrainGroup], ranks: int) -> list[list[TrainGroup]]:
    """Samples dealt round-robin over ``ranks`` by their index in the whole batch (similar
    token loads), each rank's share kept as (parts of) groups so a prompt travels once.

        >>> g = lambda n: TrainGroup((1,), None, ((2,),) * n, torch.zeros(n), (0.0,) * n, (True,) * n)
        >>> [[len(x) for x in part] for part in deal([g(3), g(2)], 2)]
        [[2, 1], [1, 1]]
    """
    parts: list[list[TrainGroup]] = [[] for _ in range(ranks)]
    first = 0
    for g in groups:
        for rank in range(ranks):
            picked = [k for k in range(len(g)) if (first + k) % ranks == rank]
            if picked:
                parts[rank].append(g.subset(picked))
        first += len(g)
    return parts


def train_groups(
    groups: Seq[Group], cfg: AlgoConfig, group_size: int
) -> tuple[list[TrainGroup], torch.Tensor]:
    """One ``TrainGroup`` per group, and the advantages used (flat, groups contiguous).

    Only response tokens carry loss (and none of a truncated sample when
    ``cfg.mask_truncated``). The advantage is per sequence; the loss broadcasts it over the
    loss mask (``rl.algos.token_advantages``). Groups carry shaped rewards (``with_shaped``).

        >>> from types import SimpleNamespace as NS
        >>> c = lambda ids, r: NS(prompt_token_ids=(1, 2), token_ids=ids, logprobs=(-0.5,) * len(ids),
        ...                       finish_reason="stop")
        >>> res = lambda r: NS(reward=r)
        >>> g = Group(Prompt("p", None, "think"), (c((5, 6), 1), c((7,), 0)), (res(1.0), res(0.0)))
        >>> cfg = AlgoConfig(advantage="drgrpo")
        >>> records, adv = train_groups(with_shaped([g], cfg, 16), cfg, 2)
        >>> seqs = records[0].sequences()
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
    records, i = [], 0
    for g in groups:
        prompt_ids = g.completions[0].prompt_token_ids
        if any(c.prompt_token_ids != prompt_ids for c in g.completions):
            raise ValueError(f"prompt {g.prompt.prompt_id}: its completions disagree on its ids")
        n = len(g.completions)
        records.append(
            TrainGroup(
                prompt_ids=tuple(prompt_ids),
                pixel_values=g.prompt.pixel_values,
                responses=tuple(tuple(c.token_ids) for c in g.completions),
                rollout_logprobs=torch.tensor(
                    [x for c in g.completions for x in c.logprobs], dtype=torch.float32
                ),
                advantages=tuple(float(a) for a in advantages[i : i + n]),
                trained=tuple(bool(k) for k in keep[i : i + n, 0]),
            )
        )
        i += n
    return records, advantages


def train_sequences(
    groups: Seq[Group], cfg: AlgoConfig, group_size: int
) -> tuple[list[Sequence], torch.Tensor]:
    """The ``Sequence`` of every sample (``train_groups`` expanded), and the advantages."""
    records, advantages = train_groups(groups, cfg, group_size)
    return [s for r in records for s in r.sequences()], advantages


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
