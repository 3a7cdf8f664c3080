"""The RL loop: the driver and what it drives (prompts, held-out evaluation, parity probe).

No Ray here: the loop talks to its actors through ``rl.loop.handles.Cluster``, which the
entry point builds (``rl.cluster.session.connect``) and hands to
``rl.loop.driver.run_rl``.
"""
