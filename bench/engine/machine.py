"""The machine a run or benchmark ran on (CPU model and vendor, cores, torch threads, GPU).

The CPU vendor matters to results, not only to timings: torch draws dropout masks (`bernoulli_`)
through MKL on Intel CPUs and element by element on others, so one seed can train different models
on the two.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def _cpuinfo(field: str) -> str | None:
    """The first `field` of /proc/cpuinfo (Linux), or None."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.split(":", 1)[0].strip() == field:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or "unknown"


def cpu_vendor() -> str:
    """e.g. GenuineIntel, AuthenticAMD; elsewhere the architecture (arm64, ...)."""
    return _cpuinfo("vendor_id") or platform.machine() or "unknown"


def cpu_flags() -> set[str]:
    """The CPU's feature flags (/proc/cpuinfo `flags`), empty where unknown."""
    return set((_cpuinfo("flags") or "").split())


def native_bf16_cpu() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX-BF16), which makes bf16 matmuls
    faster than float32 ones instead of emulated."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def machine() -> dict[str, object]:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cpu_vendor": cpu_vendor(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "native_bf16": native_bf16_cpu(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__}
