"""Results database on a real PostgreSQL server (``--storage postgresql+psycopg://...``).

The server's URL comes from ``L2S_TEST_POSTGRES_URL`` (e.g.
``postgresql+psycopg://postgres@127.0.0.1:55432/l2s_test``; ``.ci/run`` starts Debian's
PostgreSQL and exports it). Without it the tests are skipped locally, and fail under CI
(``CI`` set): a CI that silently skips the server test would prove nothing. Every test
works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from explorer.storage import Evaluation, Storage

URL = os.environ.get("L2S_TEST_POSTGRES_URL")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose default schema is a fresh one on the test server."""
    if not URL:
        if os.environ.get("CI"):
            pytest.fail("L2S_TEST_POSTGRES_URL is not set: CI must start PostgreSQL and export it")
        pytest.skip("L2S_TEST_POSTGRES_URL not set (a PostgreSQL server URL)")
    schema = f"l2s_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(URL)
    with admin.begin() as c:
        c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = sa.make_url(URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as c:
            c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_round_trip_on_postgres(pg_url: str) -> None:
    """Floats come back bit for bit, booleans as booleans, JSON as written."""
    s = Storage(pg_url)
    assert s.engine.dialect.name == "postgresql"
    config = {"agent": "random", "seed": 3, "budget": 2, "workload": "smolvlm-256m", "node": "3nm",
              "mode": "low-power", "seq_len": 2048, "batch": 1, "kv_len": 2048, "hyperparams": "{}"}
    run = s.create_run("pg-run", config, "abc123", "R = ...")
    reward = 0.1 + 0.2                      # not exactly representable in few digits
    ppa = {"power_mw": 12.345678901234567, "die_power_mw": 1e-300, "area_mm2": 2.0 / 3.0,
           "prefill_tokens_per_s": math.pi, "decode_tokens_per_s": None,
           "encode_tokens_per_s": float("inf"), "energy_pj_per_token": 5e22}
    e = Evaluation(episode=0, reward=reward, feasible=True, admissible=False, violations=5,
                   objectives={"perf": 1 / 7, "power": 0.5, "area": 1e-9},
                   terms={"perf": 1 / 7, "bonus": 1.5}, choices={"rows": 3, "layout": "ring"},
                   ppa=ppa)
    s.add_evaluations(run.id, [e])
    [row] = s.evaluations(run.id)
    assert row["reward"] == reward and row["perf_n"] == 1 / 7 and row["area_n"] == 1e-9
    assert row["power_mw"] == ppa["power_mw"] and row["area_mm2"] == 2.0 / 3.0
    assert row["die_power_mw"] == 1e-300 and row["energy_pj_per_token"] == 5e22
    assert row["prefill_tokens_per_s"] == math.pi
    assert row["decode_tokens_per_s"] is None and row["encode_tokens_per_s"] is None  # inf -> NULL
    assert row["feasible"] is True and row["admissible"] is False and row["violations"] == 5
    assert row["choices"] == {"rows": 3, "layout": "ring"} and row["terms"]["bonus"] == 1.5
    assert s.find_run("pg-run").config() == config
    s.set_checkpoint(run.id, 1)
    s.finish_run(run.id)
    assert s.find_run("pg-run").status == "finished" and s.count(run.id) == 1
    s.close()


def test_explore_and_campaign_on_postgres_match_sqlite(pg_url: str, tmp_path: Path) -> None:
    """``--storage`` on the server gives the same designs and rows as the default SQLite."""
    args = ["explore", "--workload", "smolvlm-256m", "--node", "28nm", "--mode", "low-power",
            "--agent", "ga", "--budget", "40", "--seed", "2", "--hp", "population=10"]
    on_pg = _cli(*args, "--out", str(tmp_path / "pg"), "--storage", pg_url, "--json")
    assert on_pg.returncode == 0, on_pg.stderr
    local = _cli(*args, "--out", str(tmp_path / "lite"), "--json")
    assert local.returncode == 0, local.stderr
    assert (tmp_path / "pg" / "design.json").read_bytes() == \
        (tmp_path / "lite" / "design.json").read_bytes()
    assert not (tmp_path / "pg" / "results.sqlite").exists()

    pg, lite = Storage(pg_url), Storage(f"sqlite:///{tmp_path / 'lite' / 'results.sqlite'}")
    run_pg = pg.find_run(str((tmp_path / "pg").resolve()))
    run_lite = lite.find_run(str((tmp_path / "lite").resolve()))
    assert run_pg.status == "finished" and run_pg.config() == run_lite.config()

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if k not in ("run_id", "created_at")} for r in rows]

    assert strip(pg.evaluations(run_pg.id)) == strip(lite.evaluations(run_lite.id))

    # A campaign of two runs writing concurrently (2 processes) into the one server database.
    camp = ["campaign", "--problems", "smolvlm-256m=low-power", "--nodes", "28nm,3nm",
            "--agents", "random", "--budget", "24", "--jobs", "2"]
    done = _cli(*camp, "--out", str(tmp_path / "camp_pg"), "--storage", pg_url)
    assert done.returncode == 0, done.stderr
    ref = _cli(*camp, "--out", str(tmp_path / "camp_lite"))
    assert ref.returncode == 0, ref.stderr
    assert (tmp_path / "camp_pg" / "summary.csv").read_text() == \
        (tmp_path / "camp_lite" / "summary.csv").read_text()
    runs = [r for r in pg.list_runs() if "camp_pg" in r.name]
    assert len(runs) == 2 and all(r.status == "finished" and pg.count(r.id) == 24 for r in runs)
    pg.close()
    lite.close()
