"""Which device each `python -m bench.perf` section runs on, and the figures that name it.

`--device` takes auto, cpu, cuda or cuda:N (bench.engine.device.resolve_device). Without it each
section keeps the device it has always used (SECTION_DEFAULTS). The sections whose work is CPU code
(faiss, numba) run on the CPU whatever `--device` says (CPU_ONLY); their figures say so.
"""

from __future__ import annotations

import argparse
import re

import torch

from bench.engine.device import resolve_device
from bench.engine.machine import cpu_model
from bench.errors import ConfigError

DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
CPU_ONLY = ("retrieval", "itemcf", "existing")  # faiss / numba on the CPU: no device path to choose
SECTION_DEFAULTS = {"train_step": "cpu"}  # without --device; every other training section: auto (the config's default)


def device_name_arg(value: str) -> str:
    """argparse type of --device and --baseline-device: auto, cpu, cuda or cuda:N."""
    if not DEVICE_PATTERN.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value!r}: choose auto, cpu, cuda or cuda:N")
    return value


def resolve(name: str, option: str = "--device") -> torch.device:
    """The torch device `name` means here (CUDA with its index); a ConfigError (one line) when it is not available."""
    try:
        device = resolve_device(name)
    except ConfigError as exc:
        raise ConfigError(f"{option} {name}: {exc}") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return device


def section_device(section: str, asked: torch.device | None) -> torch.device:
    """The device `section` runs on: the CPU for CPU_ONLY sections, else `asked` (--device, resolved),
    else the section's default."""
    if section in CPU_ONLY:
        return torch.device("cpu")
    return asked if asked is not None else resolve(SECTION_DEFAULTS.get(section, "auto"))


def train_device_override(device: str | None) -> list[str]:
    """`train.device=DEVICE` for a child's command line, nothing for None (the config's default, auto)."""
    return [f"train.device={device}"] if device else []


def device_name(device: torch.device) -> str:
    """The GPU's name on CUDA (torch.cuda.get_device_name), the CPU's model on the CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()


def device_figures(prefix: str, device: torch.device) -> dict[str, str]:
    """`<prefix>_device` (the device string) and `<prefix>_device_name` (bench.perf.device.device_name)."""
    return {f"{prefix}_device": str(device), f"{prefix}_device_name": device_name(device)}
