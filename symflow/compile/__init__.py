"""From graphs to callables: FunctionGraph, rewrites, and the two backends."""
