"""Run the benchmarks and print one table.

    python bench/run.py            # every bench_*.py beside this file
    python bench/run.py engine     # only bench_engine.py
    python bench/run.py scale      # bench_scale.py and every bench_scale_*.py, in one table

Each bench_<area>.py defines ``run() -> list[Row]``. Targets are checked here and printed, never asserted
in the test suite: timings on a shared 2-core machine are too noisy to fail a build on.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    area: str
    measure: str
    result: str
    goal: str
    met: bool | None  # None: no goal, or not measurable here

    @property
    def verdict(self) -> str:
        return {True: "yes", False: "NO", None: "-"}[self.met]


def load_bench(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def print_table(rows: list[Row]) -> None:
    headers = ("area", "measure", "result", "goal", "met")
    cells = [headers] + [(r.area, r.measure, r.result, r.goal, r.verdict) for r in rows]
    widths = [max(len(str(row[i])) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |")
        if index == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    wanted = set(argv)
    rows: list[Row] = []
    for path in sorted(HERE.glob("bench_*.py")):
        area = path.stem.removeprefix("bench_")
        if wanted and area not in wanted and area.split("_")[0] not in wanted:
            continue
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows.extend(load_bench(path).run())
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
