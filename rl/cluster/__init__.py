"""Where the actors run: Ray start-up and placement, the Ray-free worker classes, the
driver's handles on them, the reaper and the reward plug-ins' runtime environment.

The only code of the project that imports Ray. ``connect`` is what entry points pass to
``rl.loop.driver.run_rl``.
"""

from rl.cluster.session import connect, stop_ray

__all__ = ["connect", "stop_ray"]
