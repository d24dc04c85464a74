"""Theano's ``scan``: loops in the graph, with gradients through them (BPTT)."""

from .builder import Until, foldl, foldr, map, reduce, scan, scan_until, until
from .op import Scan, ScanInfo

__all__ = ["Scan", "ScanInfo", "Until", "foldl", "foldr", "map", "reduce", "scan", "scan_until", "until"]
