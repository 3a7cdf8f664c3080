"""Recipes: the multi-stage pipeline, the SFT stage, offline jobs (evaluate, filter, sample)
and run reports/comparisons. Stages run as their own ``sailrl`` processes; no Ray here."""
