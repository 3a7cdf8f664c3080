"""``CheckpointError``, apart from ``policy.checkpoint`` so that code which only reports
checkpoint mistakes (the run's preflight, resume) does not import transformers."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint directory exists but cannot be loaded; the message names the file."""
