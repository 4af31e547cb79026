"""Dataset fingerprint, the ISLES planners and the plan-and-preprocess steps that write what the trainer reads."""
