"""Results database (SQLAlchemy Core): runs and every evaluation, committed as it happens.

Any SQLAlchemy URL works; the default is a SQLite file. SQLite runs in WAL mode with
``synchronous=NORMAL``: a committed evaluation survives the process being killed
(``kill -9``); only an operating-system crash or power loss can lose the last commits.

Schema (version :data:`SCHEMA_VERSION`)
----------------------------------------
``runs``: ``id`` (PK), ``name`` (unique; the output directory's name), ``agent``,
``seed``, ``budget``, ``workload``, ``node``, ``mode``, ``seq_len``, ``batch``,
``kv_len``, ``hyperparams`` (JSON), ``git_revision``, ``started_at`` / ``finished_at``
(ISO 8601 UTC), ``status`` (``running`` / ``finished``), ``checkpoint_episode``
(episodes covered by the last agent checkpoint), ``reward_formula``, ``schema_version``.

``evaluations``: (``run_id``, ``episode``) PK; ``reward``, ``feasible``, ``admissible``,
``perf_n`` / ``power_n`` / ``area_n`` (the reward's normalised objectives),
``violations`` (bit flags of ``explorer.ppa.model.VIOLATIONS``), ``prefill_tokens_per_s``,
``decode_tokens_per_s``, ``encode_tokens_per_s``, ``power_mw``, ``die_power_mw``,
``area_mm2``, ``energy_pj_per_token``, ``terms`` (JSON: every reward term), ``choices``
(JSON: the point of the design space; ``explorer.space.decode`` rebuilds the design),
``ppa`` (JSON: ``explorer.ppa.problem.summarize``), ``created_at``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .errors import InputError

__all__ = ["SCHEMA_VERSION", "Storage", "RunRecord", "Evaluation", "sqlite_url", "metadata"]

SCHEMA_VERSION = 1

metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("agent", sa.String(64), nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("budget", sa.Integer, nullable=False),
    sa.Column("workload", sa.String(255), nullable=False),
    sa.Column("node", sa.String(16), nullable=False),
    sa.Column("mode", sa.String(32), nullable=False),
    sa.Column("seq_len", sa.Integer, nullable=False),
    sa.Column("batch", sa.Integer, nullable=False),
    sa.Column("kv_len", sa.Integer, nullable=False),
    sa.Column("hyperparams", sa.Text, nullable=False),
    sa.Column("git_revision", sa.String(64), nullable=False),
    sa.Column("started_at", sa.String(32), nullable=False),
    sa.Column("finished_at", sa.String(32)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("checkpoint_episode", sa.Integer, nullable=False, default=0),
    sa.Column("reward_formula", sa.Text, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
)

evaluations = sa.Table(
    "evaluations", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
    sa.Column("episode", sa.Integer, primary_key=True),
    sa.Column("reward", sa.Float, nullable=False),
    sa.Column("feasible", sa.Boolean, nullable=False),
    sa.Column("admissible", sa.Boolean, nullable=False),
    sa.Column("perf_n", sa.Float, nullable=False),
    sa.Column("power_n", sa.Float, nullable=False),
    sa.Column("area_n", sa.Float, nullable=False),
    sa.Column("violations", sa.Integer, nullable=False),
    sa.Column("prefill_tokens_per_s", sa.Float),
    sa.Column("decode_tokens_per_s", sa.Float),
    sa.Column("encode_tokens_per_s", sa.Float),
    sa.Column("power_mw", sa.Float, nullable=False),
    sa.Column("die_power_mw", sa.Float, nullable=False),
    sa.Column("area_mm2", sa.Float, nullable=False),
    sa.Column("energy_pj_per_token", sa.Float),
    sa.Column("terms", sa.Text, nullable=False),
    sa.Column("choices", sa.Text, nullable=False),
    sa.Column("ppa", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

_RUN_CONFIG = ("agent", "seed", "budget", "workload", "node", "mode", "seq_len", "batch", "kv_len",
               "hyperparams")


def sqlite_url(path: str | Path) -> str:
    """SQLAlchemy URL of a SQLite file."""
    return f"sqlite:///{Path(path).resolve()}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _finite(x: Any) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


@dataclass(frozen=True)
class RunRecord:
    """A row of ``runs``."""

    id: int
    name: str
    agent: str
    seed: int
    budget: int
    workload: str
    node: str
    mode: str
    seq_len: int
    batch: int
    kv_len: int
    hyperparams: str
    git_revision: str
    started_at: str
    finished_at: str | None
    status: str
    checkpoint_episode: int
    reward_formula: str
    schema_version: int

    def config(self) -> dict[str, Any]:
        """The fields that define what the run computes."""
        return {k: getattr(self, k) for k in _RUN_CONFIG}


@dataclass(frozen=True)
class Evaluation:
    """One evaluated design (what :meth:`Storage.add_evaluations` stores)."""

    episode: int
    reward: float
    feasible: bool
    admissible: bool
    violations: int
    objectives: Mapping[str, float]
    terms: Mapping[str, float]
    choices: Mapping[str, Any]
    ppa: Mapping[str, Any]

    def row(self, run_id: int) -> dict[str, Any]:
        p = self.ppa
        return {
            "run_id": run_id, "episode": self.episode, "reward": float(self.reward),
            "feasible": bool(self.feasible), "admissible": bool(self.admissible),
            "perf_n": float(self.objectives["perf"]), "power_n": float(self.objectives["power"]),
            "area_n": float(self.objectives["area"]),
            "violations": int(self.violations),
            "prefill_tokens_per_s": _finite(p.get("prefill_tokens_per_s")),
            "decode_tokens_per_s": _finite(p.get("decode_tokens_per_s")),
            "encode_tokens_per_s": _finite(p.get("encode_tokens_per_s")),
            "power_mw": float(p["power_mw"]), "die_power_mw": float(p["die_power_mw"]),
            "area_mm2": float(p["area_mm2"]),
            "energy_pj_per_token": _finite(p.get("energy_pj_per_token")),
            "terms": json.dumps(dict(self.terms), sort_keys=True),
            "choices": json.dumps(dict(self.choices), sort_keys=True),
            "ppa": json.dumps(dict(p), sort_keys=True), "created_at": _now(),
        }


class Storage:
    """A results database at a SQLAlchemy ``url`` (tables created if missing)."""

    def __init__(self, url: str) -> None:
        if not isinstance(url, str) or not url:
            raise InputError("--storage must be a SQLAlchemy URL, e.g. sqlite:///results.sqlite")
        try:
            self.engine = sa.create_engine(url, connect_args=_connect_args(url))
        except (sa.exc.ArgumentError, ModuleNotFoundError, ValueError) as e:
            raise InputError(f"cannot use storage {url!r}: {e}") from None
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            db = self.engine.url.database
            if db and db != ":memory:" and not db.startswith("file:"):
                Path(db).parent.mkdir(parents=True, exist_ok=True)
        try:
            metadata.create_all(self.engine)
        except sa.exc.OperationalError as e:
            raise InputError(f"cannot open storage {url!r}: {e.orig}") from None
        self.url = url

    def close(self) -> None:
        self.engine.dispose()

    # --- runs ---------------------------------------------------------------------------
    def find_run(self, name: str) -> RunRecord | None:
        with self.engine.connect() as c:
            row = c.execute(sa.select(runs).where(runs.c.name == name)).mappings().first()
        return None if row is None else RunRecord(**row)

    def create_run(self, name: str, config: Mapping[str, Any], git_revision: str,
                   reward_formula: str) -> RunRecord:
        values = {k: config[k] for k in _RUN_CONFIG}
        with self.engine.begin() as c:
            c.execute(runs.insert().values(
                name=name, git_revision=git_revision, started_at=_now(), status="running",
                checkpoint_episode=0, reward_formula=reward_formula,
                schema_version=SCHEMA_VERSION, **values))
        record = self.find_run(name)
        assert record is not None
        return record

    def set_checkpoint(self, run_id: int, episode: int) -> None:
        with self.engine.begin() as c:
            c.execute(runs.update().where(runs.c.id == run_id).values(checkpoint_episode=episode))

    def finish_run(self, run_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(runs.update().where(runs.c.id == run_id)
                      .values(status="finished", finished_at=_now()))

    def list_runs(self) -> list[RunRecord]:
        with self.engine.connect() as c:
            return [RunRecord(**r) for r in c.execute(sa.select(runs).order_by(runs.c.id)).mappings()]

    # --- evaluations ----------------------------------------------------------------------
    def add_evaluations(self, run_id: int, items: Sequence[Evaluation]) -> None:
        """Insert and commit ``items`` in one transaction."""
        if items:
            with self.engine.begin() as c:
                c.execute(evaluations.insert(), [e.row(run_id) for e in items])

    def count(self, run_id: int) -> int:
        with self.engine.connect() as c:
            return int(c.execute(sa.select(sa.func.count()).select_from(evaluations)
                                 .where(evaluations.c.run_id == run_id)).scalar_one())

    def evaluations(self, run_id: int, *, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Rows of ``run_id`` with ``start <= episode < stop``, in episode order (JSON decoded)."""
        q = sa.select(evaluations).where(evaluations.c.run_id == run_id, evaluations.c.episode >= start)
        if stop is not None:
            q = q.where(evaluations.c.episode < stop)
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(q.order_by(evaluations.c.episode)).mappings()]
        for r in rows:
            for k in ("terms", "choices", "ppa"):
                r[k] = json.loads(r[k])
        return rows


def _connect_args(url: str) -> dict[str, Any]:
    return {"timeout": 60} if url.startswith("sqlite") else {}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
