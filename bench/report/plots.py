"""PNG plots beside each table (matplotlib, non-interactive Agg backend).

hit_vs_k: per row of the table (backbone or variant), the hit rate of every curve metric of
          bench.evaluation.metrics.METRICS (Base, Sup, Inc) against K, from the K grid each run records
          (`eval.curve_points`), mean over seeds.
itg_hits_by_tab: per row, the share of hits at the largest K that fall on ITG targets of each
          scenario (tab), for every ITG metric of METRICS the records hold per tab, beside the share of
          all ITG items per tab.
A metric comes from the row's base-only runs when they recorded it, else from the variant's runs.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.evaluation.metrics import METRICS  # noqa: E402
from bench.pipeline.record import write_atomic  # noqa: E402
from bench.report.collect import Job, TableRuns  # noqa: E402

CURVE_METRICS = tuple(m.name for m in METRICS if m.curve)
ITG_METRICS = tuple(m.name for m in METRICS if m.truth == "itg")
LINE_STYLES = ("-", "--", "-.", ":")
PNG_METADATA = {"Software": None}  # no version string in the file, so regenerated plots compare equal


def panels(runs: TableRuns, order: list[tuple[str, str]]) -> list[tuple[str, list[Job], list[Job]]]:
    """(title, base jobs, variant jobs) per panel; `order` lists (model, variant) pairs."""
    out = []
    for model, variant in order:
        variant_jobs = runs.select(model, variant)
        base_jobs = runs.select(model, "off") or variant_jobs
        title = model if runs.table == "table1" else f"{model} {variant}"
        out.append((title, base_jobs, variant_jobs))
    return out


def _save(fig: plt.Figure, path: Path) -> Path:
    """Write the PNG atomically (never a half-written plot)."""
    try:
        return write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110, metadata=PNG_METADATA), binary=True)
    finally:
        plt.close(fig)


def _grid(n: int) -> tuple[plt.Figure, np.ndarray]:
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def _curve(jobs: list[Job], name: str) -> tuple[list[int], list[float]] | None:
    curves = [j.record.get("curve", {}).get(name) for j in jobs]
    if not jobs or any(not c or any(v is None for v in c.values()) for c in curves):
        return None  # a job without this channel (or a record without the curve)
    ks = sorted(int(k) for k in curves[0])
    return ks, [float(np.mean([c[str(k)] for c in curves])) for k in ks]


def hit_vs_k(runs: TableRuns, order: list[tuple[str, str]], path: Path) -> Path | None:
    chosen = panels(runs, order)
    if not chosen:
        return None
    fig, axes = _grid(len(chosen))
    for ax, (title, base_jobs, variant_jobs) in zip(axes.flat, chosen):
        for i, name in enumerate(CURVE_METRICS):
            line = _curve(base_jobs, name) or _curve(variant_jobs, name)
            style = LINE_STYLES[i % len(LINE_STYLES)]
            if line is not None:
                ax.plot(line[0], [100 * v for v in line[1]], style, marker="o", markersize=3, label=f"{name}@K")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("K")
        ax.set_ylabel("hit rate (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{runs.stem} on {runs.dataset}: hit rate vs K (mean over seeds)", fontsize=11)
    fig.tight_layout()
    return _save(fig, path)


def _tab_counts(jobs: list[Job], name: str) -> np.ndarray | None:
    counts = [j.record.get("hits_by_tab", {}).get(name) for j in jobs]
    if not jobs or any(c is None for c in counts):
        return None
    return np.sum(counts, axis=0).astype(np.float64)


def tab_series(base_jobs: list[Job], variant_jobs: list[Job], k: int) -> list[tuple[str, np.ndarray]]:
    """(label, hits per tab summed over seeds) of every ITG metric of METRICS, in declaration order, that
    the records hold per tab at K (`record["hits_by_tab"][f"{name}@{K}"]`): from the base-only runs when
    they hold it, else from the variant's."""
    out = []
    for name in ITG_METRICS:
        counts = _tab_counts(base_jobs, f"{name}@{k}")
        if counts is None:
            counts = _tab_counts(variant_jobs, f"{name}@{k}")
        if counts is not None:
            out.append((f"{name}@{k}", counts))
    return out


def itg_hits_by_tab(runs: TableRuns, order: list[tuple[str, str]], path: Path) -> Path | None:
    k = max(runs.any.record["ks"])
    chosen = panels(runs, order)
    if not chosen:
        return None
    fig, axes = _grid(len(chosen))
    for ax, (title, base_jobs, variant_jobs) in zip(axes.flat, chosen):
        itg = _tab_counts(base_jobs, "ITG")
        if itg is None:
            ax.set_visible(False)
            continue
        tabs = np.flatnonzero(itg > 0)
        series = [("all ITG", itg)] + tab_series(base_jobs, variant_jobs, k)
        width = 0.8 / len(series)
        for i, (label, counts) in enumerate(series):
            share = counts[tabs] / max(counts.sum(), 1.0)
            ax.bar(np.arange(len(tabs)) + i * width, 100 * share, width, label=label)
        ax.set_xticks(np.arange(len(tabs)) + 0.4 - width / 2, [str(t) for t in tabs], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("scenario (tab) of the ITG target")
        ax.set_ylabel("share of hits (%)")
        ax.legend(fontsize=7)
    fig.suptitle(f"{runs.stem} on {runs.dataset}: where the ITG hits come from (K = {k}, summed over seeds)",
                 fontsize=11)
    fig.tight_layout()
    return _save(fig, path)
