"""A partial-credit reward for docs/examples/own_task.py (see docs/rewards.md): the share of
the reference's comma-separated items that stand at the same position in the final answer.

    >>> partial_credit("<think>..</think>\\\\boxed{1, 7, 4}", "1, 4, 7", {})
    0.3333333333333333
    >>> partial_credit("<think>..</think>no box", "1, 4, 7", {})
    {'score': 0.0, 'answer_found': 0.0}
"""

from __future__ import annotations

from rewards.extract import final_answer


def partial_credit(completion, answer, metadata):
    found = final_answer(completion)
    if found is None:
        return {"score": 0.0, "answer_found": 0.0}  # outcome "no_answer"
    want = [a.strip() for a in answer.split(",")]
    got = [g.strip() for g in found.split(",")]
    return sum(w == g for w, g in zip(want, got)) / len(want)
