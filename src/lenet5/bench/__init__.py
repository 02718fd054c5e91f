"""The benchmark behind ``lenet5 bench``: the usual plain-PyTorch loop against the project's."""

from .core import BenchConfig, format_table, run_bench

__all__ = ["BenchConfig", "format_table", "run_bench"]
