"""Metrics, summaries, the threshold baseline and overlay pictures."""
