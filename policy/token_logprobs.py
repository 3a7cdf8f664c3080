"""Per-token log-probs and entropy from causal-LM logits, chunked to bound memory.

Convention (see policy.batch): output position ``t`` is about token ``t`` predicted from the
logits at ``t - 1``; position 0 is 0.
"""

from __future__ import annotations

import torch


def token_logprobs(
    logits: torch.Tensor, input_ids: torch.Tensor, chunk: int = 4096
) -> torch.Tensor:
    """(B, T, V) logits, (B, T) ids -> (B, T) float32 log p(input_ids[t] | < t); [:, 0] = 0.

    Works in fp32 on ``chunk`` positions at a time so a long sequence never holds a full fp32
    (T, V) log-softmax beside the logits.
    """
    bsz, width, _ = logits.shape
    out = logits.new_zeros((bsz, width), dtype=torch.float32)
    flat_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
    flat_targets = input_ids[:, 1:].reshape(-1)
    pieces = []
    for start in range(0, flat_targets.numel(), chunk):
        part = flat_logits[start : start + chunk].float()
        target = flat_targets[start : start + chunk]
        picked = part.gather(-1, target.unsqueeze(-1)).squeeze(-1)
        pieces.append(picked - torch.logsumexp(part, dim=-1))
    if pieces:
        out = torch.cat([out[:, :1], torch.cat(pieces).view(bsz, width - 1)], dim=1)
    return out


def token_entropy(logits: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(B, T, V) logits -> (B, T) float32 entropy of the distribution predicting token t
    (from logits at t - 1); [:, 0] = 0."""
    bsz, width, vocab = logits.shape
    flat = logits[:, :-1].reshape(-1, vocab)
    pieces = []
    for start in range(0, flat.shape[0], chunk):
        part = flat[start : start + chunk].float()
        logp = torch.log_softmax(part, dim=-1)
        pieces.append(-(logp.exp() * logp).sum(-1))
    zeros = logits.new_zeros((bsz, 1), dtype=torch.float32)
    if not pieces:
        return zeros.expand(bsz, width).clone()
    return torch.cat([zeros, torch.cat(pieces).view(bsz, width - 1)], dim=1)
