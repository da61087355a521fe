"""Campaign on Ray: a local Ray instance gives exactly the local backend's results."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa

from explorer.campaign import CampaignSpec, run_campaign
from explorer.cli import main
from explorer.storage import sqlite_url

try:
    import ray
except ModuleNotFoundError:          # the optional extra llm2silicon[ray]
    ray = None
    if os.environ.get("CI"):
        raise RuntimeError("CI must install the ray extra: pip install -e '.[dev,ray]'") from None

needs_ray = pytest.mark.skipif(ray is None, reason="Ray not installed (pip install 'llm2silicon[ray]')")

SPEC = CampaignSpec(workloads=("smolvlm-256m",), nodes=("28nm", "3nm"), modes=("low-power",),
                    agents=("random", "sa"), seeds=(0,), budget=24)


def _evaluations(db: Path) -> list[tuple]:
    eng = sa.create_engine(sqlite_url(db))
    with eng.connect() as c:
        rows = [tuple(r) for r in c.execute(sa.text(
            "select episode, reward, feasible, power_mw, area_mm2, choices, ppa "
            "from evaluations order by episode"))]
    eng.dispose()
    return rows


@needs_ray
def test_ray_backend_matches_local(tmp_path: Path) -> None:
    local = run_campaign(SPEC, tmp_path / "local", jobs=1)
    on_ray = run_campaign(SPEC, tmp_path / "ray", jobs=2, backend="ray")
    assert not ray.is_initialized()          # the private local Ray was shut down
    assert len(on_ray) == len(SPEC.configs()) == 4

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k != "out"} for r in rows]

    assert strip(on_ray) == strip(local)
    for run in (tmp_path / "local" / "runs").iterdir():
        twin = tmp_path / "ray" / "runs" / run.name
        assert _evaluations(twin / "results.sqlite") == _evaluations(run / "results.sqlite")
        assert (twin / "design.json").read_bytes() == (run / "design.json").read_bytes()
        ppa_a = json.loads((run / "ppa.json").read_text())
        ppa_b = json.loads((twin / "ppa.json").read_text())
        assert ppa_a["reward"] == ppa_b["reward"]
    for name in ("summary.md", "summary.csv"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()


def test_address_needs_ray_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["campaign", "--problems", "smolvlm-256m=low-power", "--nodes", "28nm",
                 "--agents", "random", "--budget", "4", "--out", str(tmp_path / "c"),
                 "--address", "127.0.0.1:6379"])
    assert code == 2
    assert capsys.readouterr().err.strip() == "error: --address needs --backend ray"
