"""Where the actors run: Ray start-up and placement, the Ray-free worker classes, the
driver's handles on them, weight sync, the reaper and the reward plug-ins' runtime
environment.

The only code of the project that imports Ray. ``rl.cluster.session.connect`` is what entry
points pass to ``rl.loop.driver.run_rl``. (Nothing is imported here: actor processes that
unpickle a worker class load only what that class needs.)
"""
