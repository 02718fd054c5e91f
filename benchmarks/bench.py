"""``python benchmarks/bench.py [flags]`` = ``lenet5 bench [flags]``: the reference loop
against the project's path (see benchmarks/README.md). Importable:

    from lenet5.bench import BenchConfig, run_bench, format_table
    print(format_table(run_bench(BenchConfig(model="modern", epochs=3))))
"""

from __future__ import annotations

import sys

from lenet5.bench import BenchConfig, format_table, run_bench
from lenet5.cli import main

__all__ = ["BenchConfig", "format_table", "run_bench"]

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
