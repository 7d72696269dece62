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


def gpu_identity(device: torch.device | None = None) -> dict[str, object] | None:
    """What a CUDA device is, as far as results go: its model, compute capability, and the CUDA and cuDNN versions
    torch runs it with (the record and the stage-cache key hold it, as they hold the CPU vendor); None off CUDA."""
    if not torch.cuda.is_available() or (device is not None and device.type != "cuda"):
        return None
    index = device.index if device is not None and device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"gpu": torch.cuda.get_device_name(index), "capability": f"{major}.{minor}", "cuda": torch.version.cuda,
            "cudnn": cudnn}


GPU_FIELDS = {"gpu": "gpu", "gpu_capability": "capability", "cuda": "cuda", "cudnn": "cudnn"}  # machine() key: gpu_identity key


def machine(device: torch.device | None = None) -> dict[str, object]:
    """The record's machine: CPU model, vendor and native bf16, cores, threads, versions, and the GPU `device` is
    (the current one when None; gpu_identity's fields, GPU_FIELDS; None on the CPU or without a GPU)."""
    gpu = gpu_identity(device) or {"gpu": None, "capability": None, "cuda": torch.version.cuda, "cudnn": None}
    return {"cpu": cpu_model(), "cpu_vendor": cpu_vendor(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "native_bf16": native_bf16_cpu(),
            **{key: gpu[field] for key, field in GPU_FIELDS.items()},
            "python": platform.python_version(), "torch": torch.__version__}
