"""Herald's benchmarks, run side by side with the baselines: `python -m bench` (see README.md)."""
