"""The experiments behind the results tables (documentation/results/), run from a checkout:
`python -m experiments.phantom_results`."""
