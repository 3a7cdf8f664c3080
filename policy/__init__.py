"""sailrl.policy: the SAIL-VL2 model (config, vision tower, adapter, LLM, processor,
checkpoint IO) and the learner. Knows nothing of Ray or vLLM."""
