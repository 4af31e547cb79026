"""Speed and memory benchmarks: commands run from a checkout (`python -m benchmarks.perfusion`), never timed tests."""
