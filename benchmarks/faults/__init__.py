"""Fault scenarios of ``benchmarks/fault_injection.py`` (one module per fault family)."""
