"""Self-contained HTML report of a run directory (``llm2silicon report build/RUN``)."""

from __future__ import annotations

from pathlib import Path

from .data import RunData, assumption_rows, collect, model_breakdown
from .html import fmt, render_html

__all__ = ["build_report", "collect", "render_html", "RunData", "model_breakdown",
           "assumption_rows", "fmt"]


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``report.html`` (or ``out``) for ``run_dir`` atomically; returns its path."""
    from ..run import atomic_write_bytes

    data = collect(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    atomic_write_bytes(path, render_html(data).encode("utf-8"))
    return path
