"""One table's whole markdown page: the header, Table 1 (protocol v3, bench.report.table1) or Tables 2 / 3
(bench.report.ablations), the training and collapse notes, the paper's own table and the plots."""

from __future__ import annotations

from typing import cast

from bench.report.collect import TableRuns
from bench.report.table1 import Table1K, column_note, design_lines, table1, table1_numbers
from bench.report.ablations import (INTERVAL_NOTE, POP_ROW_NOTE, Ablation, ablation_numbers, sensitivity_line, table2,
                                    table3)
from bench.report.checks import collapsed_text, training_rows, training_table
from bench.report.header import header, paper_block


def render(runs: TableRuns, command: str, plots: list[str], numbers: list[Table1K] | list[Ablation] | None = None) -> str:
    """The whole markdown file of one table, from `numbers` when given (table1_numbers' or ablation_numbers' result)."""
    if runs.table == "table1":
        at_k = table1_numbers(runs) if numbers is None else cast("list[Table1K]", numbers)
        body, notes = table1(runs, at_k)
        parts = [header(runs, command, design_lines(at_k)), body, "", *[f"- {v}" for v in notes], "",
                 "Bold: the largest of the second-K channels (every hit-rate column but Base) in each row. "
                 + column_note(), ""]
    else:
        ablations = ablation_numbers(runs) if numbers is None else cast("list[Ablation]", numbers)
        parts = [header(runs, command, [sensitivity_line(ablations, runs.any.record["ks"])])]
        for model in runs.models():
            parts += [f"Backbone: `{model}`", ""]
            if runs.table == "table2":
                parts += [table2(runs, model, ablations), ""]
            else:
                main, p_table = table3(runs, model, ablations)
                parts += [main, "", p_table, ""]
        if runs.table == "table2":
            parts += ["Each variant's Inc@K against the TB-Online row (the base's Sup@K). "
                      f"{INTERVAL_NOTE} Bold: the best Inc@K of each column. TB-Online's Inc@K is its Sup@K. {POP_ROW_NOTE}", ""]
        else:
            parts += [f"Each variant against IncRec-NA on the same metric. {INTERVAL_NOTE} "
                      f"Bold: the best Inc@K and Exposure Hit@K of each column. {POP_ROW_NOTE}", ""]
    training_by_row = training_rows(runs)
    training = training_table(training_by_row)
    if training is not None:
        parts += ["Training (early stopping on the validation requests): mean over seeds of the best epoch and of "
                  "the epochs run, per trained model.", "", training, ""]
        if collapsed := collapsed_text(training_by_row):
            parts += [collapsed, ""]
    else:
        parts += ["Training: no record holds a best epoch (the records predate early stopping).", ""]
    parts += [paper_block(runs.table), ""]
    if plots:
        parts += ["Plots: " + ", ".join(f"[{p}]({p})" for p in plots), ""]
    return "\n".join(parts)
