"""Run plumbing: the experiment config, checkpoints, the run log, the preflight checks, the
prompt data checks and the resources a run asks for. No Ray, and nothing of the loop, the
cluster, the recipes or the CLI."""
