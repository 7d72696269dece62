"""Early stopping on a validation metric, with the best epoch's weights restored (PROTOCOL section 3).

Protocol v2 trains every model "to early stopping on the validation requests, as RecBole does
(`stopping_step`, best checkpoint restored)": after each epoch the model's selection metric is
computed on the validation requests; the weights of the best epoch are kept; training stops after
`patience` epochs without improvement or at `max_epochs`; the run records the validation curve, the
best epoch and the epochs run. RecBole's `stopping_step` counts epochs whose validation score is not
strictly better than the best so far (`early_stopping(..., bigger=True)` in recbole.utils); this
class does the same, for a metric where higher is better.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class EarlyStopping:
    """The best validation value so far, its epoch (1-based), the epochs since, and its weights.

    `update(value, model)` after each epoch: returns True when training should stop (`patience`
    epochs in a row without a strictly greater value, or `max_epochs` epochs done). A value improves
    only if it is finite and strictly greater than the best so far: ties and NaN never improve.
    On improvement every parameter and buffer of the model (each shared tensor once) is copied to
    CPU into buffers allocated once, at the first improvement, and reused (copy_) afterwards, so a
    long run holds one extra CPU copy of the model and allocates nothing per improvement. `restore(model)` loads the best weights back.

    keep_weights=False tracks the curve and the best epoch only (no snapshot; `restore` refuses):
    for recording a validation curve when the last epoch is kept anyway.
    """

    def __init__(self, patience: int, max_epochs: int, *, keep_weights: bool = True) -> None:
        if int(patience) < 1:
            raise ValueError(f"patience must be at least 1, got {patience}")
        if int(max_epochs) < 1:
            raise ValueError(f"max_epochs must be at least 1, got {max_epochs}")
        self.patience = int(patience)
        self.max_epochs = int(max_epochs)
        self.keep_weights = keep_weights
        self.curve: list[float] = []  # the validation value after each epoch
        self.best_value: float | None = None
        self.best_epoch: int | None = None  # 1-based
        self.since_best = 0  # epochs without improvement (since the best, or since the start)
        self.stopped: str | None = None  # "patience" | "max_epochs" once update returned True
        self._best_state: dict[str, object] | None = None  # CPU copies, reused across improvements

    @property
    def epoch(self) -> int:
        """Epochs seen so far."""
        return len(self.curve)

    def improves(self, value: float) -> bool:
        return math.isfinite(value) and (self.best_value is None or value > self.best_value)

    def update(self, value: float, model: nn.Module | None = None) -> bool:
        """Record one epoch's validation value; snapshot `model` if it improves. True = stop now."""
        if self.stopped is not None:
            raise RuntimeError(f"update after early stopping already stopped ({self.stopped}, epoch {self.epoch})")
        value = float(value)
        self.curve.append(value)
        if self.improves(value):
            self.best_value, self.best_epoch, self.since_best = value, self.epoch, 0
            if self.keep_weights:
                if model is None:
                    raise ValueError("update needs the model to snapshot its weights (keep_weights=True)")
                self._snapshot(model)
        else:
            self.since_best += 1
        if self.since_best >= self.patience:
            self.stopped = "patience"
        elif self.epoch >= self.max_epochs:
            self.stopped = "max_epochs"
        return self.stopped is not None

    @staticmethod
    def _tensors(model: nn.Module) -> dict[str, torch.Tensor]:
        """Every parameter and buffer once: a tower shared by several modules (the item tower every user
        tower holds) appears under one name, not once per holder as in state_dict()."""
        return dict(model.named_parameters()) | dict(model.named_buffers())

    @torch.no_grad()
    def _snapshot(self, model: nn.Module) -> None:
        tensors = self._tensors(model)
        if self._best_state is None or self._best_state.keys() != tensors.keys():
            self._best_state = {}
        for k, v in tensors.items():
            buf = self._best_state.get(k)
            if isinstance(buf, torch.Tensor) and buf.shape == v.shape and buf.dtype == v.dtype:
                buf.copy_(v.detach())
            else:
                self._best_state[k] = v.detach().to("cpu", copy=True)

    def has_weights(self) -> bool:
        return self._best_state is not None

    @torch.no_grad()
    def restore(self, model: nn.Module) -> None:
        """Copy the best epoch's weights back into `model` (in place, on the model's device)."""
        if self._best_state is None:
            raise RuntimeError("no weights to restore: no epoch improved (every value non-finite?)"
                               if self.keep_weights else "no weights to restore: keep_weights=False")
        tensors = self._tensors(model)
        if tensors.keys() != self._best_state.keys():
            raise RuntimeError("restore: the model's parameters are not the snapshot's")
        for k, v in tensors.items():
            v.copy_(self._best_state[k])

    def summary(self) -> dict:
        """The run record's fields. Non-finite values of the curve are written as None (JSON has no NaN)."""
        return {
            "valid_curve": [v if math.isfinite(v) else None for v in self.curve],
            "best_epoch": self.best_epoch,
            "best_value": self.best_value,
            "epochs_run": self.epoch,
            "stopped": self.stopped,
        }
