"""Benchmarks of cryptoliq-exporter: ``python -m benchmarks`` prints the table of the README.

Every figure is a median of several runs; where there is a baseline, it is measured in the same
run, alternately with what it is compared to, and the ratio is the median of the per-run ratios,
so that a noisy machine slows both alike. ``--smoke`` runs everything at small sizes (CI).
"""
