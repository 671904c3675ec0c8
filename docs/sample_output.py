"""Write the sample output of ``sk-weightfree compare`` that the docs show.

Runs the quick start's command (``sk-weightfree compare``, digits, the shared recipe,
seed 0) with ``--threads 1 --no-output`` and writes what it prints, under a header
naming the command, the machine and the thread count, to
``docs/_static/compare_output.txt`` (included by ``docs/quickstart.md``), and the same
block into ``README.md`` between its ``compare-output`` markers. Nothing is typed by
hand; ``tests/test_cli_usage.py`` checks that the file has the program's format::

    python docs/sample_output.py
"""

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "_static" / "compare_output.txt"
COMMAND = ["compare", "--threads", "1", "--no-output"]


def main():
    import torch

    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    printed = subprocess.run([sys.executable, "-m", "sk_weightfree", *COMMAND], env=env,
                             capture_output=True, text=True, check=True).stdout
    seconds = time.perf_counter() - start
    header = (f"# sk-weightfree {' '.join(COMMAND)}   ({seconds:.0f} s in all, "
              f"load average {os.getloadavg()[0]:.1f})\n"
              f"# {os.cpu_count()} x86-64 CPU cores shared with other jobs, no GPU; "
              f"torch {torch.__version__}, 1 thread; Python {platform.python_version()}; "
              f"{time.strftime('%Y-%m-%d')}\n")
    text = header + printed.rstrip() + "\n"
    OUT.write_text(text)
    readme = ROOT / "README.md"
    block = f"<!-- compare-output: start -->\n```text\n{text}```\n<!-- compare-output: end -->"
    readme.write_text(re.sub(r"<!-- compare-output: start -->.*<!-- compare-output: end -->",
                             lambda _: block, readme.read_text(), flags=re.S))
    print(text)


if __name__ == "__main__":
    main()
