"""Pop the first job of a queue file that fits before the session's deadline (tools/table_sweep/README.md).

A queue line is `DATASET LABEL SEED EST_MIN [OVERRIDES...]`; comments (#) and malformed lines are kept, never popped.
The deadline file holds epoch seconds; without it every job fits. Prints the popped line, or nothing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def _minutes(field: str) -> float:
    """A line's estimated minutes; NaN (never fits) when the field is not a number."""
    try:
        return float(field)
    except ValueError:
        return float("nan")


def pop(queue: Path, deadline_file: Path) -> str | None:
    """Remove and return the first job whose estimated minutes fit before the deadline."""
    deadline = float(deadline_file.read_text()) if deadline_file.exists() else float("inf")
    minutes_left = (deadline - time.time()) / 60
    lines = queue.read_text().splitlines() if queue.exists() else []
    for i, line in enumerate(lines):
        fields = line.split()
        if len(fields) < 4 or line.lstrip().startswith("#") or not _minutes(fields[3]) <= minutes_left:
            continue  # a comment, a malformed line (never popped: fix it in the file) or a job too long for now
        queue.write_text("".join(f"{x}\n" for j, x in enumerate(lines) if j != i))
        return line
    return None


if __name__ == "__main__":
    job = pop(Path(sys.argv[1]), Path(sys.argv[2]))
    if job:
        print(job)
