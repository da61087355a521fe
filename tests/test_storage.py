"""Results database: schema round trip, run identity, and resume after SIGKILL
(``explore`` and ``campaign``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from explorer.errors import InputError
from explorer.run import RunConfig, run_search
from explorer.storage import SCHEMA_VERSION, Evaluation, Storage, sqlite_url

CONFIG = {"agent": "sa", "seed": 1, "budget": 10, "workload": "smolvlm-256m", "node": "28nm",
          "mode": "low-power", "seq_len": 2048, "batch": 1, "kv_len": 2048, "hyperparams": "{}"}


def _evaluation(episode: int, reward: float) -> Evaluation:
    return Evaluation(episode=episode, reward=reward, feasible=True, admissible=False, violations=0,
                      objectives={"perf": 0.5, "power": 0.25, "area": 0.125},
                      terms={"total": reward}, choices={"rows": episode},
                      ppa={"power_mw": 2.0, "die_power_mw": 1.5, "area_mm2": 3.0,
                           "decode_tokens_per_s": 7.0, "energy_pj_per_token": float("inf")})


def test_round_trip(tmp_path: Path) -> None:
    s = Storage(sqlite_url(tmp_path / "r.sqlite"))
    run = s.create_run("a", CONFIG, "abc123", "R = ...")
    assert run.status == "running" and run.schema_version == SCHEMA_VERSION
    assert run.config() == CONFIG and run.git_revision == "abc123"
    s.add_evaluations(run.id, [_evaluation(0, -1.5), _evaluation(1, 0.25)])
    rows = s.evaluations(run.id)
    assert [r["episode"] for r in rows] == [0, 1] and rows[1]["reward"] == 0.25
    assert rows[0]["choices"] == {"rows": 0} and rows[0]["decode_tokens_per_s"] == 7.0
    assert rows[0]["energy_pj_per_token"] is None            # non-finite figures become NULL
    assert rows[0]["prefill_tokens_per_s"] is None
    assert s.evaluations(run.id, start=1)[0]["episode"] == 1 and s.count(run.id) == 2
    with pytest.raises(sa.exc.IntegrityError):              # one row per (run, episode)
        s.add_evaluations(run.id, [_evaluation(1, 9.0)])
    s.set_checkpoint(run.id, 2)
    s.finish_run(run.id)
    done = s.find_run("a")
    assert done.status == "finished" and done.checkpoint_episode == 2 and done.finished_at
    assert [r.name for r in s.list_runs()] == ["a"]
    s.close()


def test_bad_storage_url() -> None:
    with pytest.raises(InputError, match=r"^cannot use storage 'nosuch://x'"):
        Storage("nosuch://x")


def test_run_identity(tmp_path: Path) -> None:
    s = Storage(sqlite_url(tmp_path / "r.sqlite"))
    cfg = RunConfig("smolvlm-256m", "28nm", "low-power", "random", budget=20, seed=0)
    run_search(cfg, s, "run", tmp_path / "c.pkl")
    with pytest.raises(InputError, match=r"^run 'run' already exists in .*; pass --resume"):
        run_search(cfg, s, "run", tmp_path / "c.pkl")
    other = RunConfig("smolvlm-256m", "28nm", "low-power", "random", budget=20, seed=1)
    with pytest.raises(InputError, match=r"^run 'run' in .* was started with a different configuration"):
        run_search(other, s, "run", tmp_path / "c.pkl", resume=True)
    again = run_search(cfg, s, "run", tmp_path / "c.pkl", resume=True)   # finished: nothing to do
    assert again.evaluated == 0 and again.resumed_from == 20 and s.count(again.run.id) == 20


def _explore(out: Path, agent: str, budget: int, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "explorer", "explore", "--workload", "smolvlm-256m", "--node",
            "28nm", "--mode", "low-power", "--agent", agent, "--budget", str(budget), "--seed", "4",
            "--checkpoint-every", "100", "--out", str(out), *extra]
    if agent in ("ga", "nsga2"):
        argv += ["--hp", "population=20"]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"})


def _count(db: Path) -> int:
    if not db.exists():
        return 0
    eng = sa.create_engine(sqlite_url(db))
    try:
        with eng.connect() as c:
            return int(c.execute(sa.text("select count(*) from evaluations")).scalar_one())
    except sa.exc.OperationalError:          # tables not created yet
        return 0
    finally:
        eng.dispose()


def _rows(db: Path) -> list[tuple]:
    eng = sa.create_engine(sqlite_url(db))
    with eng.connect() as c:
        out = [tuple(r) for r in c.execute(sa.text(
            "select episode, reward, choices, ppa from evaluations order by episode"))]
    eng.dispose()
    return out


@pytest.mark.parametrize("agent", ["sa", "ga"])
def test_resume_after_sigkill_is_identical(tmp_path: Path, agent: str) -> None:
    """SIGKILL mid-run loses no stored evaluation; --resume ends exactly like a clean run."""
    budget = 600       # killed at >= 250 stored, i.e. after the checkpoint at 200
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _explore(killed, agent, budget)
    db = killed / "results.sqlite"
    deadline = time.monotonic() + 240
    while _count(db) < 250 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    seen = _count(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    stored = _rows(db)
    assert seen >= 250 and seen <= len(stored) < budget           # nothing committed was lost
    assert [r[0] for r in stored] == list(range(len(stored)))
    ckpt = _checkpoint_episode(db)
    assert 0 < ckpt <= len(stored)

    resumed = _explore(killed, agent, budget, "--resume", "--json")
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    report = json.loads(out)
    assert report["resumed_from"] == ckpt and report["replayed"] == len(stored) - ckpt
    assert report["evaluated_now"] == budget - len(stored)
    reference = _explore(clean, agent, budget)
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err

    after = _rows(db)
    assert after[:len(stored)] == stored                           # old rows untouched
    assert after == _rows(clean / "results.sqlite")                # same designs, rewards, PPA
    assert (killed / "design.json").read_bytes() == (clean / "design.json").read_bytes()


def _checkpoint_episode(db: Path) -> int:
    eng = sa.create_engine(sqlite_url(db))
    with eng.connect() as c:
        v = c.execute(sa.text("select checkpoint_episode from runs")).scalar_one()
    eng.dispose()
    return int(v)


def _campaign(out: Path, *extra: str) -> subprocess.Popen:
    argv = [sys.executable, "-m", "explorer", "campaign", "--problems", "smolvlm-256m=low-power",
            "--nodes", "28nm", "--agents", "sa,ga", "--seeds", "3", "--budget", "600",
            "--jobs", "2", "--out", str(out), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONUNBUFFERED": "1"}, start_new_session=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_campaign_resume_after_sigkill_is_identical(tmp_path: Path) -> None:
    """SIGKILL of the campaign process kills its workers too; nothing stored is lost and
    ``--resume`` ends with the same databases, designs and summary as a clean campaign."""
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = _campaign(killed)
    dbs = [killed / "runs" / f"smolvlm-256m_28nm_low-power_{a}_s3" / "results.sqlite"
           for a in ("sa", "ga")]
    deadline = time.monotonic() + 300
    while max(_count(d) for d in dbs) < 250 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the campaign finished before it could be killed"
    workers = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                              text=True).stdout.split()]
    seen = [_count(d) for d in dbs]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    try:
        deadline = time.monotonic() + 30
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert workers and not any(_alive(w) for w in workers), "workers outlived the campaign"
    finally:
        for w in workers:
            if _alive(w):
                os.kill(w, signal.SIGKILL)
    stored = [_rows(d) if d.exists() else [] for d in dbs]
    for rows, n in zip(stored, seen, strict=True):
        assert n <= len(rows) < 600 and [r[0] for r in rows] == list(range(len(rows)))
    assert not (killed / "summary.md").exists()

    resumed = _campaign(killed, "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    reference = _campaign(clean)
    _, err = reference.communicate(timeout=600)
    assert reference.returncode == 0, err
    for db, rows in zip(dbs, stored, strict=True):
        twin = clean / db.relative_to(killed)
        after = _rows(db)
        assert after[:len(rows)] == rows                           # old rows untouched
        assert after == _rows(twin) and len(after) == 600
        assert (db.parent / "design.json").read_bytes() == (twin.parent / "design.json").read_bytes()
    assert (killed / "summary.csv").read_text() == (clean / "summary.csv").read_text()
