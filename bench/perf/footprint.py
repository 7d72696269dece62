"""`python -m bench.perf.footprint PRESET [PRESET ...]`: bytes each stage holds, per item and per log row.

For a synthetic preset, the arrays each stage keeps are measured (numpy `nbytes`, pandas' deep
memory usage, torch's element sizes), not estimated: the log and item tables, the requests, the
existing system's R_u, the RTG / ITG flags, the model of one variant with its AdaGrad state and
gradients, and the test rankings. docs/scale.md divides them by items and log rows and projects
them to KuaiRand-27K. Printed as one JSON object per preset.
"""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import torch

from bench.pipeline.cache import StageCache
from bench.config import resolve_ks
from bench.evaluation.evaluate import ranking_depth
from bench.engine.build import build_model, variant_from_config
from bench.perf.train_step import compose_app_config
from bench.pipeline.prepare import prepare
from bench.pipeline.run import StageTimer
from bench.protocol.samples import split_groups


def nbytes(obj) -> int:
    """Bytes of the numpy arrays a (nested) dataclass holds."""
    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if dataclasses.is_dataclass(obj):
        return sum(nbytes(getattr(obj, f.name)) for f in dataclasses.fields(obj))
    return 0


def model_bytes(model: torch.nn.Module) -> dict[str, int]:
    """Parameters, and what training adds: AdaGrad's sum of squares (one per parameter), a dense gradient
    for every parameter outside a sparse embedding (sparse ones hold only the rows a step read), and the
    best epoch's snapshot that early stopping keeps (one copy of every parameter)."""
    sparse = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding) and m.sparse}
    size = lambda p: p.numel() * p.element_size()  # noqa: E731
    item = sum(size(p) for p in model.item_tower.parameters())
    users = sum(size(p) for n, p in model.named_parameters() if not n.startswith("item_tower."))
    dense_grads = sum(size(p) for p in model.parameters() if id(p) not in sparse)
    return {"item_tower_params": item, "user_towers_params": users, "adagrad_state": item + users,
            "dense_grads": dense_grads, "best_epoch_snapshot": item + users}


def footprint(preset: str, variant: str = "na", model: str = "sasrec") -> dict[str, object]:
    cfg = compose_app_config([f"dataset.preset={preset}", f"model={model}", f"increc={variant}"])
    prep = prepare(cfg, StageCache(cfg.cache.dir if cfg.cache.enabled else None), StageTimer(), progress=False)
    ds, req = prep.ds, prep.req
    samples = split_groups(req, prep.retrieved, ds.n_items)
    ks = resolve_ks(cfg.eval.ks, ds.n_items)
    depth = ranking_depth(ks, prep.budget, ds.n_items)
    net = build_model(cfg, ds, variant_from_config(cfg.increc), 0)
    out: dict[str, object] = {
        "preset": preset, "items": int(ds.n_items), "log_rows": int(len(ds.log)), "users": int(len(ds.users)),
        "requests": int(req.n), "test_requests": int(req.is_test.sum()), "ranking_depth": int(depth),
        "log_bytes": int(ds.log.memory_usage(deep=True).sum()), "items_table_bytes": int(ds.items.memory_usage(deep=True).sum()),
        "users_table_bytes": int(ds.users.memory_usage(deep=True).sum()),
        "requests_bytes": nbytes(req), "positives_bytes": nbytes(req.positives),
        "retrieved_bytes": nbytes(prep.retrieved), "itg_flags_bytes": int(samples.is_itg.nbytes),
        "test_rankings_bytes": int(req.is_test.sum()) * depth * 4,  # int32 rankings (bench.evaluation.evaluate)
        **model_bytes(net),
    }
    return out


def main(argv: list[str] | None = None) -> int:
    for preset in (argv if argv is not None else sys.argv[1:]) or ["pure"]:
        print(json.dumps(footprint(preset)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
