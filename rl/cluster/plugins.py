"""Ship reward plug-ins to the reward actors through Ray's runtime environment.

On a private Ray (``ray.address`` unset) every worker starts on this machine with the
driver's current directory and PYTHONPATH, so a plug-in named in ``rewards.custom`` imports
as it does here. On a cluster the other nodes have neither: the job's runtime environment
(``ray.init``; Ray uploads local paths only at the job level) then gets the plug-ins'
top-level modules as ``py_modules`` (a package directory, or a single-file module), which
Ray uploads and puts on every worker's path. Plug-ins installed as packages (entry points) must
be installed on every node, as any dependency.

    >>> from pathlib import Path
    >>> env = reward_runtime_env({"mine": "tests.reward_plugins:partial_credit"}, cluster=True)
    >>> [Path(p).name for p in env["py_modules"]]
    ['tests']
    >>> reward_runtime_env({"mine": "tests.reward_plugins:partial_credit"}, cluster=False)
    {}
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from types import ModuleType
from typing import Any

OWN_PACKAGES = {"rewards", "rl", "policy", "rollout", "sft"}  # on every node with sailrl


def plugin_modules(custom: Mapping[str, str]) -> list[ModuleType]:
    """The top-level modules of the custom reward paths that are not sailrl's own."""
    tops = dict.fromkeys(path.partition(":")[0].split(".")[0] for path in custom.values())
    return [importlib.import_module(top) for top in tops if top not in OWN_PACKAGES]


def module_path(module: ModuleType) -> str:
    """What Ray uploads for ``module``: its package directory, or its single ``.py`` file."""
    paths = list(getattr(module, "__path__", []))
    if paths:
        return str(paths[0])
    if not getattr(module, "__file__", None):
        raise ValueError(f"rewards.custom: module {module.__name__!r} has no file to ship")
    return str(module.__file__)


def reward_runtime_env(custom: Mapping[str, str], cluster: bool) -> dict[str, Any]:
    """Job-level ``runtime_env`` fields: the plug-ins as ``py_modules`` on a cluster."""
    if not cluster:
        return {}
    paths = [module_path(m) for m in plugin_modules(custom)]
    return {"py_modules": paths} if paths else {}
