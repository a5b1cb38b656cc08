"""Training: the loop, the trimming (who trains), checkpoints."""
