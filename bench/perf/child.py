"""One measured child process: its wall seconds, its own peak resident memory, its exit code.

Why not os.wait4's ru_maxrss: subprocess starts a child with vfork, and at exec Linux folds the
memory high-water mark of the address space being replaced (the parent's, under vfork) into the
child's maximum RSS, so ru_maxrss is never below the parent's own peak (a parent holding 2 GiB
reports 2 GiB for `python -c pass`). The child's peak is read instead from inside it: `python -m
bench.perf.child OUT -m MODULE ARGS...` runs MODULE as __main__ in its own process and, at exit, writes
that process's VmHWM (/proc/self/status: the peak RSS of its own address space) to OUT. A child killed
before exit (say, out of memory) writes nothing; its peak is then reported as None, with the exit
status in the failure text.
"""

from __future__ import annotations

import atexit
import runpy
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path



def vm_hwm_gib() -> float | None:
    """This process's peak resident memory in GiB (Linux /proc/self/status VmHWM), None where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # the value is in kB
    except OSError:
        pass
    return None


@dataclass
class ChildRun:
    seconds: float
    peak_rss_gib: float | None  # the child's own VmHWM; None when it died before writing it
    returncode: int  # negative: killed by that signal
    stderr_tail: str  # its last stderr line, or "exit code N" / "killed by signal N" when it printed none
    timed_out: bool = False  # stopped at timeout_s

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_module(module: str, args: list[str], timeout_s: float | None = None) -> ChildRun:
    """Run `python -m module args...` from the project root, stdout discarded, and measure it (module docstring)."""
    from bench.config import PROJECT_ROOT  # here, not at module level: the child's own peak stays its module's

    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "stderr.txt", "w+") as err:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        timed_out = False
        try:
            returncode = subprocess.run([sys.executable, "-m", "bench.perf.child", str(peak_file), "-m", module, *args],
                                        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=err,
                                        timeout=timeout_s).returncode
        except subprocess.TimeoutExpired:
            returncode, timed_out = -9, True
        seconds = time.perf_counter() - start
        err.seek(0)
        lines = err.read().strip().splitlines()
        written = peak_file.read_text().strip() if peak_file.exists() else ""
        peak = float(written) if written else None
    if lines:
        tail = lines[-1]
    elif returncode < 0:
        tail = f"killed by signal {-returncode}" + (f" (timeout {timeout_s:.0f} s)" if timed_out else "")
    else:
        tail = f"exit code {returncode}"
    return ChildRun(seconds, peak, returncode, tail, timed_out)


def _main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "-m":
        raise SystemExit("usage: python -m bench.perf.child OUT -m MODULE [ARGS...]")
    out, module, rest = Path(argv[0]), argv[2], argv[3:]

    def write_peak() -> None:
        peak = vm_hwm_gib()
        out.write_text("" if peak is None else repr(peak))

    atexit.register(write_peak)
    sys.argv = [module, *rest]  # the parent started this process in the project root
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
