"""Start-up time of the CLIs' ``--help`` against ``python -c "import mindformers"`` (DESIGN §4: ≤ 1 s).

    python benchmarks/startup.py [--repeat 5]

Each command runs in a fresh interpreter ``--repeat`` times; the median wall time is printed with its ratio to the
baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def timed(cmd: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    py = sys.executable
    baseline = timed([py, "-c", "import mindformers"], max(1, args.repeat // 2))
    rows = [
        ("run_mindformer_ext.py --help", [py, "run_mindformer_ext.py", "--help"]),
        ("mf-ext --help", [py, "-m", "mf_ext.cli", "--help"]),
        ("mf-ext convert --help", [py, "-m", "mf_ext.cli", "convert", "--help"]),
        ("mf-ext migrate --help", [py, "-m", "mf_ext.cli", "migrate", "--help"]),
        ("mf-ext data --help", [py, "-m", "mf_ext.cli", "data", "--help"]),
    ]
    print(f"{'command':<32} {'median s':>9} {'vs import mindformers':>22}")
    base_name = 'python -c "import mindformers"'
    print(f"{base_name:<32} {baseline:>9.3f} {'1.00x':>22}")
    for name, cmd in rows:
        try:
            t = timed(cmd, args.repeat)
        except subprocess.CalledProcessError:
            print(f"{name:<32} {'failed':>9}")
            continue
        flag = "" if t <= 1.0 else "  (> 1 s target)"
        print(f"{name:<32} {t:>9.3f} {t / baseline:>21.3f}x{flag}")


if __name__ == "__main__":
    main()
