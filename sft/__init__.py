"""sailrl.sft: LongCoT and Think-Fusion SFT on the policy learner."""
