"""TRL-convention reward functions as TRL's documentation writes them; sailrl runs them
unchanged (docs/rewards.md, "TRL-style reward functions")."""

import re


def format_reward_func(completions, **kwargs):
    """Reward function that checks if the completion has a specific format."""
    pattern = r"^<think>.*?</think>.*$"
    matches = [re.match(pattern, content) for content in completions]
    return [1.0 if match else 0.0 for match in matches]


def accuracy_reward(completions, solution, **kwargs):
    """1.0 when the boxed answer equals the ``solution`` column; None (not applicable) for
    rows without one."""
    from rewards.extract import final_answer

    return [
        None if sol is None else float(final_answer(c) == str(sol))
        for c, sol in zip(completions, solution)
    ]
