"""``python -m tests.perf [NAME ...] [OPTIONS]``: run every bench_* module, or the named ones.

    python -m tests.perf                    # every benchmark
    python -m tests.perf callback           # tests/perf/bench_callback.py only
    python -m tests.perf callback --duration 5 --connections 32
    python -m tests.perf --list

Options after the names go to each benchmark's ``main(argv)``.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(HERE)]) if m.name.startswith("bench_"))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names: list[str] = []
    while argv and not argv[0].startswith("-"):
        names.append(argv.pop(0))
    found = available()
    if argv[:1] == ["--list"]:
        print("\n".join(found))
        return 0
    if argv[:1] in (["-h"], ["--help"]) and not names:
        print(__doc__.strip())
        print("\nbenchmarks: " + ", ".join(found))
        return 0
    unknown = [n for n in names if n not in found]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(found)}", file=sys.stderr)
        return 2
    status = 0
    for name in names or found:
        module = importlib.import_module(f"tests.perf.bench_{name}")
        print(f"== bench {name} ==", flush=True)
        status = max(status, int(module.main(argv) or 0))
    return status


if __name__ == "__main__":
    sys.exit(main())
