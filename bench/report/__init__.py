"""Run records -> the paper's Tables 1-3 as markdown, with plots and JSON (`python -m bench.report DIR...`). Above
the pipeline: it may import every layer below (bench/__init__.py lists them).

collect.py reads run.json + per_request.npz into jobs grouped by (dataset, table); comparisons.py and stats.py
give protocol v3's comparisons, intervals, pooled answers and verdicts; table1.py, ablations.py, cells.py,
header.py, checks.py and page.py write a table's markdown; diagnostics.py its protocol and premise page;
summary.py its JSON; findings.py results/FINDINGS.md from those JSON files; calibration.py and
calibration_page.py the verdict rule's calibration; plots.py the PNGs; paper.py the paper's own figures;
target_tabs.py what requests.target_tabs=non_primary leaves to evaluate.
"""
