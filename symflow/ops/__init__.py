"""Op families. Each module holds, per op, its type rule, NumPy implementation and gradient
(and, for the Numba backend, its code emitter)."""
