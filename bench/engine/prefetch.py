"""Training batches built ahead of the step by a background thread (issue 44's input pipeline).

The batch builder (bench.engine.batches.train_batch) is numpy work on the host; on a GPU the step would wait
for it. `prefetched` runs the builder on one background thread, `depth` batches ahead of the step, in the
order of its inputs, so the builder draws from the epoch's random generator in exactly the order the inline
loop would: the same seed gives the same batches, prefetched or not. With `pin`, each batch lands in
page-locked memory, so the copy to the device (`TrainBatch.to(device, non_blocking=True)`) overlaps the step.

A thread rather than torch's DataLoader workers: the builder reads one shared numpy generator in sequence,
which worker processes could only reproduce by handing each batch its own generator state (a different
stream from the inline loop's), and numpy releases the GIL in the array work the builder spends its time on.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence, TypeVar

import torch

In = TypeVar("In")
Out = TypeVar("Out")

PREFETCH_DEPTH = 2  # batches built ahead under train.prefetch=auto on a CUDA device


def prefetch_depth(setting: object, device: torch.device) -> int:
    """How many batches `train.prefetch` builds ahead on `device`: auto is PREFETCH_DEPTH on CUDA and 0 (inline)
    on the CPU, where the builder would take a core from the step's threads; an integer is that many."""
    if setting == "auto":
        return PREFETCH_DEPTH if device.type == "cuda" else 0
    return int(setting)


_DONE = object()


def prefetched(build: Callable[[In], Out], inputs: Sequence[In], depth: int,
               pin: Callable[[Out], Out] | None = None) -> Iterator[Out]:
    """build(x) for each x of `inputs`, in order; with depth >= 1 built by a background thread at most `depth`
    ahead (then passed through `pin`, e.g. TrainBatch.pin_memory). An exception in the builder is raised here,
    at the batch that raised it; leaving the loop early stops the thread before the generator returns."""
    if depth <= 0:
        for x in inputs:
            batch = build(x)
            yield batch if pin is None else pin(batch)
        return
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in inputs:
                batch = build(x)
                if not put(batch if pin is None else pin(batch)):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
            return
        put(_DONE)

    thread = threading.Thread(target=work, name="batch-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
