"""A table's cells: mean ± sd over seeds, v2's paired difference (Tables 2 and 3), bold, and the row order
(the backbones in `experiment=table1`'s own order)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.report.collect import Job, paired_arrays
from bench.report.stats import format_p, mean_std, paired_p, two_level_bootstrap


def sweep_backbones() -> tuple[str, ...]:
    """The backbones `experiment=table1` sweeps, in its order (conf/experiment/table1.yaml): the row order of
    every table, so a backbone added to the sweep appears in its place without an edit here; others follow
    alphabetically."""
    sweep = OmegaConf.load(CONF_DIR / "experiment" / "table1.yaml").hydra.sweeper.params.model
    return tuple(m.strip() for m in str(sweep).split(","))


MODEL_ORDER = sweep_backbones()


TABLE2_ORDER = ("off", "tb_itg", "tb_boost", "na")


TABLE3_ORDER = ("na", "ori", "on")


BOOTSTRAP_DRAWS = 2000


BOOTSTRAP_SEED = 0


@dataclass
class Cell:
    mean: float
    std: float
    bold: bool = False

    def text(self) -> str:
        if math.isnan(self.mean):
            return "—"
        s = f"{100 * self.mean:.2f} ± {100 * self.std:.2f}"
        return f"**{s}**" if self.bold else s


@dataclass
class Diff:
    """A paired difference a − b: mean over seeds and requests, its bootstrap interval, the Wilcoxon p."""

    mean: float
    low: float
    high: float
    p: float

    def text(self) -> str:
        return f"{100 * self.mean:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}]"

    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it holds 0."""
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def diff_text(d: Diff | None) -> str:
    return "—" if d is None else d.text()


def diff_p(d: Diff | None) -> str:
    return format_p(None if d is None else d.p)


def cell(jobs: list[Job], metric: str) -> Cell:
    values = [j.metric(metric) for j in jobs]
    return Cell(*mean_std([v for v in values if v is not None]))


def measured(jobs: list[Job], metric: str) -> bool:
    return bool(jobs) and all(j.metric(metric) is not None for j in jobs)


def difference(a_jobs: list[Job], a_metric: str, b_jobs: list[Job], b_metric: str) -> Diff | None:
    """a_metric (a_jobs) − b_metric (b_jobs), paired per seed and request over the seeds both have: the
    mean, the 95% two-level bootstrap interval (seeds, then requests) and the Wilcoxon p of the
    per-request values averaged over those seeds. None where a side did not measure its metric."""
    arrays = paired_arrays(a_jobs, a_metric, b_jobs, b_metric)
    if arrays is None:
        return None
    a, b = arrays
    low, high = two_level_bootstrap(a - b, n_boot=BOOTSTRAP_DRAWS, seed=BOOTSTRAP_SEED)
    return Diff(float((a - b).mean()), low, high, paired_p(a.mean(axis=0), b.mean(axis=0)))


def bold_max(cells: list[Cell]) -> None:
    """Mark the cell(s) with the largest mean."""
    means = [c.mean for c in cells if not math.isnan(c.mean)]
    if means:
        for c in cells:
            c.bold = c.mean == max(means)


def ordered(names: list[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)
