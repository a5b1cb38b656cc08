"""From scores to a verdict: filters over the frame index, cuts, post-processing."""
