"""sailrl.rl: algorithm math, configuration, datasets, Ray topology, driver loop and CLI.

The only package that knows Ray.
"""
