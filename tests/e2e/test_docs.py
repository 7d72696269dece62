"""The documentation site builds with every link and anchor checked (`mkdocs build --strict`), and the README
stays a short entry point: the two commands first, at most 200 lines, linking pages that exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.config import PROJECT_ROOT


def test_the_site_builds_strict(tmp_path: Path) -> None:
    if os.environ.get("CI") != "true":
        pytest.importorskip("mkdocs", reason="the docs extra (mkdocs-material) is not installed")
        pytest.importorskip("material", reason="the docs extra (mkdocs-material) is not installed")
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=240,
                         env=os.environ | {"NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "site" / "extending" / "index.html").exists()
    assert (tmp_path / "site" / "results" / "FINDINGS" / "index.html").exists()  # the findings page is on the site


def test_the_readme_is_a_short_entry_point() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert len(lines) <= 200
    commands = [line.split("#")[0].strip() for line in lines[lines.index("```bash") + 1:lines.index("```bash") + 3]]
    assert commands == ["make run", "make test"]
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (PROJECT_ROOT / target).exists(), target


def test_the_performance_figures_page_regenerates_from_the_saved_files(tmp_path: Path) -> None:
    """docs/perf-figures.md is python -m bench.perf.page's output from results/perf/*.json, byte for byte: no figure
    on it is typed by hand; each saved figure appears with its value."""
    import json

    from bench.perf.page import main

    out = tmp_path / "perf-figures.md"
    assert main(["--out", str(out)]) == 0
    committed = (PROJECT_ROOT / "docs" / "perf-figures.md").read_text()
    assert out.read_text().replace(f" --out {out}", "") == committed, "regenerate it: python -m bench.perf.page"
    full = json.loads((PROJECT_ROOT / "results" / "perf" / "full.json").read_text())
    assert "| `sasrec_epoch_speedup_vs_recbole` |" in committed and "sasrec" in full["sections"]
