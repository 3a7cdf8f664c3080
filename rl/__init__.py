"""sailrl.rl: the RL side of sailrl, in rooms with import rules (tests/test_layering.py,
docs/architecture.md): ``config`` (YAML <-> dataclasses), ``algos`` (pure math), ``tasks``
(demo data), ``run`` (run plumbing), ``loop`` (the driver), ``cluster`` (Ray: the only room
that imports it), ``recipe`` (pipeline, offline jobs), ``bench`` and ``cli``.
"""
