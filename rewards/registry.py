"""The reward registry: reward names mapped to dotted import paths.

A reward is a plain function ``fn(completion: str, answer: str, metadata: Mapping) -> float |
dict[str, float]`` (a dict holds ``score`` plus any named extras). Rewards are found, in this
order, in the config's ``custom`` section (``name: package.module:function``), among those
registered with :func:`register`, among the built-ins, and in the ``sailrl.rewards``
entry-point group of installed packages. Worker processes import rewards by path, so a reward
must live in an importable module (not ``__main__``, not inside a function).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any

from rewards.config import RewardsConfig

RewardFn = Callable[[str, str, Mapping[str, Any]], "float | Mapping[str, float]"]
ENTRY_POINT_GROUP = "sailrl.rewards"
BUILTINS: dict[str, str] = {
    "answer": "rewards.math_answer:answer_reward",
    "format": "rewards.format_reward:format_reward",
    "think_quality": "rewards.judge:think_quality_reward",
}
REGISTERED: dict[str, str] = {}


def dotted_path(fn: Callable) -> str:
    """``package.module:function`` of a module-level function; ValueError if workers could not
    import it."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(
            f"reward {qualname or fn!r} must be a module-level function in an importable module "
            "(worker processes import it by path); move it out of __main__ / the enclosing function"
        )
    return f"{module}:{qualname}"


def register(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering a module-level reward function under ``name``.

    >>> @register("always_one")
    ... def always_one(completion, answer, metadata):
    ...     return 1.0
    >>> REGISTERED["always_one"]
    'rewards.registry:always_one'
    >>> del REGISTERED["always_one"]
    """

    def decorate(fn: RewardFn) -> RewardFn:
        REGISTERED[name] = dotted_path(fn)
        return fn

    return decorate


def load_object(path: str) -> Any:
    """Import ``package.module:attr`` (or ``package.module.attr``); ValueError saying what is
    missing."""
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ValueError(f"{path!r}: expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({err})") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _entry_points() -> dict[str, str]:
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def reward_paths(config: RewardsConfig) -> dict[str, str]:
    """Dotted path of every reward the config's sets use; ValueError naming an unknown one."""
    paths: dict[str, str] = {}
    entry_points: dict[str, str] | None = None
    for name in config.reward_names():
        if name in config.custom:
            paths[name] = config.custom[name]
        elif name in REGISTERED:
            paths[name] = REGISTERED[name]
        elif name in BUILTINS:
            paths[name] = BUILTINS[name]
        else:
            if entry_points is None:
                entry_points = _entry_points()
            if name not in entry_points:
                known = sorted({*BUILTINS, *REGISTERED, *config.custom, *entry_points})
                raise ValueError(
                    f"sets: unknown reward {name!r}; known rewards: {', '.join(known)}. Add it "
                    f"under custom ({name}: package.module:function) or register it"
                )
            paths[name] = entry_points[name]
    return paths


def load_rewards(paths: Mapping[str, str], config: RewardsConfig) -> dict[str, RewardFn]:
    """Callables for ``paths``. A loaded object that is a factory (marked with
    ``needs_config = True``) is called with the rewards config to build the reward."""
    rewards: dict[str, RewardFn] = {}
    for name, path in paths.items():
        obj = load_object(path)
        if getattr(obj, "needs_config", False):
            obj = obj(config)
        if not callable(obj):
            raise ValueError(f"reward {name!r}: {path!r} is not callable")
        rewards[name] = obj
    return rewards
