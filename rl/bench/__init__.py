"""Benchmarks of the RL stack: ``sailrl bench rl`` (``rl_step``) and ``sailrl bench trl``
(``trl_compare``, running each side in ``trl_sides``). No Ray imports: runs go through
``rl.cluster.session.connect`` like any entry point."""
