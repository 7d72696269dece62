"""Run records -> the paper's Tables 1-3 as markdown, with plots (`python -m bench.report DIR...`).

collect.py reads run.json + per_request.npz into jobs grouped by (dataset, table); stats.py gives
mean ± std over seeds and paired per-request significance; tables.py writes the markdown in the
paper's layout; plots.py the PNGs beside it; paper.py holds the paper's own figures for comparison.
"""
