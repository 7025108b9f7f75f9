"""Benchmarks: each figure is measured beside its own baseline in the same run (the machine is
shared and noisy, so only ratios are comparable). Results go to bench/results/latest.json."""
