"""sailrl.rewards: pure scoring of completions. Imports nothing else of the project."""
