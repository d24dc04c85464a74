"""The Numba backend: a whole function (scan loops, gradients, updates) as one native function."""
