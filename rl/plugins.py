"""Ship reward plug-ins to the reward actors through Ray's runtime environment.

On a private Ray (``ray.address`` unset) every worker starts on this machine with the
driver's current directory and PYTHONPATH, so a plug-in named in ``rewards.custom`` imports
as it does here. On a cluster the other nodes have neither: the reward actors then get the
plug-ins' top-level modules as ``py_modules`` (a package directory, or a single-file module),
which Ray uploads and puts on their path. Plug-ins installed as packages (entry points) must
be installed on every node, as any dependency.

    >>> env = reward_runtime_env({"mine": "tests.reward_plugins:partial_credit"}, cluster=True)
    >>> [m.__name__ for m in env["py_modules"]]
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


def reward_runtime_env(custom: Mapping[str, str], cluster: bool) -> dict[str, Any]:
    """``runtime_env`` for the reward actors: the plug-ins as ``py_modules`` on a cluster."""
    if not cluster:
        return {}
    modules = plugin_modules(custom)
    return {"py_modules": modules} if modules else {}
