"""Micro-benchmarks: commands that measure, never timed tests (`python -m isles_pipeline.benchmarking.chain_step`)."""
