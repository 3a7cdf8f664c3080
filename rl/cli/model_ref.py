"""``--model`` arguments: a model directory or a checkpoint reference (``<run>``,
``<run>/checkpoints``, ``.../latest``, ``.../checkpoints/12``), resolved when the command
line is parsed, so a bad one is an argparse error (exit 2) before any engine starts."""

from __future__ import annotations

import argparse


def model_dir(text: str) -> str:
    """The model directory ``text`` names (``rl.run.checkpoint.resolve_reference``); other paths
    come back unchanged, for the command's own "not found" error."""
    from rl.run.checkpoint import CheckpointError, resolve_reference

    try:
        return str(resolve_reference(text))
    except CheckpointError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
