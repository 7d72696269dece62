"""Resuming sweeps: a job keeps the record already in its folder only when nothing that decides its
result has changed (config, code, package versions, data files)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bench.data import dataset_files
from bench.errors import BenchError
from bench.engine.device import resolve_device
from bench.engine.machine import GPU_FIELDS, cpu_vendor, gpu_identity, native_bf16_cpu
from bench.pipeline.record import code_digest, data_fingerprint, package_versions
from bench.config.schema import RESULT_NEUTRAL_TRAIN_KEYS

PER_REQUEST = "per_request.npz"
RESUME_IGNORED = ("seeds", "cache", "tune", "tuned", "tuning_applied", "logger")  # top-level keys that never change
# a job's result (the tuned values a run applied are in its model and train sections; their provenance is not a
# setting; the logger only writes)
IGNORED_IN_SECTION = {
    "train": RESULT_NEUTRAL_TRAIN_KEYS,  # progress bars, batches built ahead
    # where the data files are (or how they were fetched), not what they hold: the fingerprint checks that, so
    # records made in another checkout (committed ones, a clean clone) are kept
    "dataset": ("root", "cache_dir", "download"),
}


def _comparable(config: dict) -> dict:
    """A job's config without the keys that do not change its result (sweep bookkeeping, progress bars, where
    the data files lie)."""
    out = {k: v for k, v in config.items() if k not in RESUME_IGNORED}
    for section, keys in IGNORED_IN_SECTION.items():
        out[section] = {k: v for k, v in out.get(section, {}).items() if k not in keys}
    return out


def finished_record(cfg: DictConfig, out_dir: Path) -> dict | None:
    """The record already in `out_dir` when it was written by the same config, code, package versions, CPU
    vendor and native-bf16 support (what train.precision=auto resolves to) and data files, else None."""
    path = out_dir / "run.json"
    if not path.exists() or not (out_dir / PER_REQUEST).exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    same_config = _comparable(record.get("config", {})) == _comparable(OmegaConf.to_container(cfg, resolve=True))
    same_code = record.get("code_version", {}).get("code_digest") == code_digest()
    same_versions = record.get("versions") == package_versions()
    machine = record.get("machine", {})
    same_cpu = (machine.get("cpu_vendor") == cpu_vendor()  # dropout masks differ by vendor
                and machine.get("native_bf16", native_bf16_cpu()) == native_bf16_cpu())  # train.precision=auto
    try:  # the device this run would train on: the record's kind of device, and on CUDA the same GPU model,
        here = resolve_device(str(cfg.train.device))  # CUDA and cuDNN (the record names the GPU it ran on)
    except BenchError:
        return None  # the run itself will say why
    same_machine = same_cpu and torch.device(str(record.get("device", "cpu"))).type == here.type
    if same_machine and here.type == "cuda":
        ident = gpu_identity(here)
        same_machine = all(machine.get(k) == ident[v] for k, v in GPU_FIELDS.items())
    if not (same_config and same_code and same_versions and same_machine):
        return None
    try:
        same_data = record.get("data_fingerprint") == data_fingerprint(dataset_files(cfg.dataset, progress=False))
    except BenchError:
        return None  # the data is gone or unreadable: the run itself will say why
    return record if same_data else None
