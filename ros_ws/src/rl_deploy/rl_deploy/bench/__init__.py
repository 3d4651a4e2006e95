"""Benchmarks of the core against its named peers, printed as JSON (`rl-deploy bench ...`)."""
