"""sailrl.rollout: SAIL-VL2 in vLLM (plugin registration), the rollout engine and the
receiving half of weight sync. Knows nothing of DeepSpeed or Ray."""
