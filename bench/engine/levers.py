"""Training-speed settings of `train.*` applied to a model before its first step (docs/train_step_profile.md).

- `precision`: fp32 | bf16 | auto. bf16 runs the user towers under torch.autocast (matmuls in
  bfloat16, float32 master weights, softmax / norms / the loss in float32); auto picks bf16 where
  the hardware multiplies it natively (a CUDA device with bf16, or a CPU with AVX512-BF16 / AMX-BF16)
  and fp32 elsewhere, since emulated bf16 is slower than fp32. Validation and test scoring stay fp32.
- `dropout_sampler`: bits | torch (models/dropout.py).
- `item_vectors_once`: one item-tower call per step on every item id the step reads (histories for
  every tower, negatives, targets, RTG, exposures: IncRec._item_vectors), instead of one per use.
- `compile`: torch.compile of each user tower (inductor), with a fallback to eager when compilation
  fails (no C++ compiler, an unsupported op); compile seconds are reported apart from the epochs.
The reference path is `precision=fp32 dropout_sampler=torch item_vectors_once=false compile=false`.
"""

from __future__ import annotations

import logging
import time
from bench.config.schema import Levers

import torch

from bench.engine.machine import native_bf16_cpu
from models.dropout import set_sampler
from models.increc import IncRec

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 natively: a GPU of compute capability 8.0 or higher (Ampere on;
    torch.cuda.is_bf16_supported() also counts the emulated bf16 of a V100 or T4), or a CPU with AVX512-BF16 / AMX."""
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu" and native_bf16_cpu()


def resolve_precision(setting: str, device: torch.device) -> str:
    """fp32 or bf16: the precision `train.precision=setting` trains in on `device`."""
    if setting not in PRECISIONS:
        raise ValueError(f"train.precision={setting!r}; choose one of {list(PRECISIONS)}")
    if setting == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return setting


REFERENCE = Levers(precision="fp32", dropout_sampler="torch", item_vectors_once=False, compile=False)


class _Compiled(torch.nn.Module):
    """A user tower run through torch.compile, falling back to the eager tower (once, logged) when a
    compiled call fails; `seconds` holds the time of the calls that compiled a new graph."""

    def __init__(self, tower: torch.nn.Module) -> None:
        super().__init__()
        self.tower = tower
        self.compiled = torch.compile(tower, dynamic=True)
        self.failed: str | None = None
        self.seconds = 0.0
        self.graphs = 0

    def forward(self, *args, **kwargs):
        if self.failed is not None or not self.training:  # eval stays eager: validation batches have other shapes
            return self.tower(*args, **kwargs)
        before = _compile_count()
        start = time.perf_counter()
        try:
            out = self.compiled(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure means: run eager
            self.failed = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
            log.warning("torch.compile failed (%s); training runs eager", self.failed)
            return self.tower(*args, **kwargs)
        if _compile_count() > before:
            self.seconds += time.perf_counter() - start
            self.graphs += 1
        return out


def _compile_count() -> int:
    from torch._dynamo.utils import counters

    return int(counters["stats"].get("unique_graphs", 0))


def apply_levers(model: IncRec, levers: Levers, device: torch.device) -> dict:
    """Set the levers on `model` (in place) and return what was applied, for the training record."""
    precision = resolve_precision(levers.precision, device)
    set_sampler(model, levers.dropout_sampler)
    model.item_vectors_once = bool(levers.item_vectors_once)
    model.tower_autocast = torch.bfloat16 if precision == "bf16" else None
    applied = {"precision": precision, "dropout_sampler": levers.dropout_sampler,
               "item_vectors_once": bool(levers.item_vectors_once), "compile": bool(levers.compile)}
    if levers.compile:
        for name in list(model.towers):
            if not isinstance(model.towers[name], _Compiled):
                model.towers[name] = _Compiled(model.towers[name])
    return applied


def compile_report(model: IncRec) -> dict:
    """Compile seconds, graphs and failures of the compiled towers (empty without compile)."""
    towers = [t for t in model.towers.values() if isinstance(t, _Compiled)]
    if not towers:
        return {}
    failed = [t.failed for t in towers if t.failed]
    return {"compile_seconds": round(sum(t.seconds for t in towers), 3), "compiled_graphs": sum(t.graphs for t in towers),
            "compile_failed": failed[0] if failed else None}
