"""Side-by-side benchmarks: each prints our figure, an anchor measured in the same run, and the ratio."""
