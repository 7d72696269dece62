"""A table's cells: mean ± sd over seeds, the paired difference of Tables 2 and 3 under protocol v3's statistics
(PROTOCOL 5: crossed seed × request components, a t interval, a verdict against δ), bold, and the row order (the
backbones in `experiment=table1`'s own order)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from omegaconf import OmegaConf

from bench.config import CONF_DIR
from bench.report.collect import Job, paired_arrays, request_users
from bench.report.stats import crossed_stats, delta_of, format_p, mean_std


def sweep_backbones() -> tuple[str, ...]:
    """The backbones `experiment=table1` sweeps, in its order (conf/experiment/table1.yaml): the row order of
    every table, so a backbone added to the sweep appears in its place without an edit here; others follow
    alphabetically."""
    sweep = OmegaConf.load(CONF_DIR / "experiment" / "table1.yaml").hydra.sweeper.params.model
    return tuple(m.strip() for m in str(sweep).split(","))


MODEL_ORDER = sweep_backbones()


TABLE2_ORDER = ("off", "tb_itg", "tb_boost", "na")


TABLE3_ORDER = ("na", "ori", "on")


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
    """A paired difference a − b under protocol v3 (PROTOCOL 5): the mean over seeds and requests, its 95% t
    interval from the crossed seed × request components (requests clustered by user), the t-test p, and the
    verdict against δ = 10% of the reference arm b (holds, reversed, equivalent, cannot tell)."""

    mean: float
    low: float
    high: float
    p: float
    verdict: str | None = None  # None: read back from a summary written before the verdict existed
    delta: float | None = None
    mdd: float | None = None  # the design sensitivity (t(0.975) + t(0.80))·SE (nan with one seed)

    def text(self) -> str:
        if math.isnan(self.low) or math.isnan(self.high):
            return f"{100 * self.mean:+.2f} (one seed: no interval)"
        return f"{100 * self.mean:+.2f} [{100 * self.low:+.2f}, {100 * self.high:+.2f}]"

    def sign(self) -> int:
        """+1 when the interval lies above 0, -1 below, 0 when it holds 0 (or there is none)."""
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
    """a_metric (a_jobs) − b_metric (b_jobs), paired per seed and request over the seeds both have, under protocol
    v3's statistics (bench.report.stats.crossed_stats, requests clustered by user when the records give them).
    None where a side did not measure its metric."""
    arrays = paired_arrays(a_jobs, a_metric, b_jobs, b_metric)
    if arrays is None:
        return None
    a, b = arrays  # [S, R] each
    stats = crossed_stats(a - b, request_users(a_jobs[0]))
    delta = delta_of(float(b.mean()))
    verdict = stats.verdict(delta) if stats.n_seeds >= 2 else "no interval (one seed)"
    return Diff(stats.estimate, stats.low, stats.high, stats.p, verdict, delta, stats.mdd)


def diff_verdict(d: Diff | None) -> str:
    return "—" if d is None or d.verdict is None else d.verdict


def bold_max(cells: list[Cell]) -> None:
    """Mark the cell(s) with the largest mean."""
    means = [c.mean for c in cells if not math.isnan(c.mean)]
    if means:
        for c in cells:
            c.bold = c.mean == max(means)


def ordered(names: list[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(n for n in names if n not in order)
