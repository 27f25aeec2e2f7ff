"""Run every benchmark script in ``benchmarks/`` in turn (``./dev bench [ARGS]``).

Each script runs in its own process with this interpreter. ARGS (``--quick``, ``--rounds N``,
``--check`` ...) go to every script whose ``--help`` lists the flag; a script is not given
flags it does not know. Exit status: 0 when every script exited 0, else the first failure's.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHMARKS = {"__init__.py", "run_all.py"}
TIMEOUT_SECONDS = 1800  # per script: a hung benchmark must not hang CI forever


def benchmark_scripts() -> list[Path]:
    """The benchmark scripts, in name order."""
    return sorted(p for p in HERE.glob("*.py")
                  if p.name not in NOT_BENCHMARKS and not p.name.startswith("_"))


def flags_for(script: Path, argv: list[str]) -> tuple[list[str], list[str]]:
    """Split ``argv`` into the flags (with their values) ``script --help`` lists, and the rest."""
    usage = subprocess.run([sys.executable, str(script), "--help"], capture_output=True,
                           text=True, timeout=60).stdout
    known: list[str] = []
    unknown: list[str] = []
    i = 0
    while i < len(argv):
        flag = argv[i].split("=", 1)[0]
        has_value = "=" not in argv[i] and i + 1 < len(argv) and not argv[i + 1].startswith("-")
        group = argv[i:i + 2] if has_value else argv[i:i + 1]
        listed = re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", usage)
        (known if listed else unknown).extend(group)
        i += len(group)
    return known, unknown


def main(argv: list[str]) -> int:
    """Run each script with the flags it accepts; return the first failing status, or 0."""
    status = 0
    for script in benchmark_scripts():
        args, skipped = flags_for(script, argv) if argv else ([], [])
        print(f"==> {script.name} {' '.join(args)}".rstrip(), flush=True)
        if skipped:
            print(f"    (not given {' '.join(skipped)}: {script.name} does not take it)")
        try:
            code = subprocess.run([sys.executable, str(script), *args],
                                  timeout=TIMEOUT_SECONDS).returncode
        except subprocess.TimeoutExpired:
            print(f"{script.name}: timed out after {TIMEOUT_SECONDS}s", flush=True)
            code = 124
        if code != 0:
            print(f"{script.name}: exit status {code}", flush=True)
            status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
