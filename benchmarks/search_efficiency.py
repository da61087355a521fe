"""Search efficiency of the explorer's agents on the four reference problems.

Usage: python benchmarks/search_efficiency.py [--json] [--budget 2000] [--seeds 5]
       [--agents random,grid,...] [--problems llama3.1-8b/3nm/performance,...] [--jobs 2]
       [--out build/bench_search]

Problems: llama3.1-8b/3nm/performance, llama3.1-8b/28nm/performance,
smolvlm-256m/28nm/low-power, smolvlm-256m/3nm/low-power. Every agent runs ``--seeds``
seeds with ``--budget`` PPA evaluations each. Reported per problem and agent:

* median (over seeds) of the best reward found;
* evaluations to reach 95 % of the way from a random design to the best design anyone
  found: target = R0 + 0.95 (R* - R0), R* = best reward of all runs of the problem,
  R0 = median reward of the random agent's evaluations (a typical random design).
  Rewards can be negative, so "95 % of the best" is measured on this gap. The median over
  seeds is shown ("> budget" when most seeds never reach it) with the seeds that did.

Runs are stored under ``--out`` (one SQLite file each) and reused when finished, so an
interrupted benchmark continues where it stopped. Agents that are not installed (e.g.
``sac-moe`` before it lands) are skipped with a note.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

PROBLEMS = ("llama3.1-8b/3nm/performance", "llama3.1-8b/28nm/performance",
            "smolvlm-256m/28nm/low-power", "smolvlm-256m/3nm/low-power")
AGENTS = ("sac-moe", "random", "grid", "tpe", "nsga2", "sa", "ga")
#: Jobs start cheapest first (CPU seconds per 2,000-evaluation run, measured), so that with
#: little time the table fills with complete agents rather than a few seeds of each.
_COST_ORDER = ("random", "grid", "ga", "nsga2", "sa", "sac-moe", "tpe")


def _key(problem: str, agent: str, seed: int, budget: int) -> str:
    workload, node, mode = problem.split("/")
    return f"{workload}_{node}_{mode}_{agent}_s{seed}_b{budget}"


def _one(job: tuple[str, str, int, int, str]) -> dict[str, Any]:
    """Run (or reuse) one search; return its rewards and times, also written as ``<key>.json``.

    The JSON is written (atomically) when the run finishes, so the table can be assembled
    from whatever runs exist (``--report``) and an interrupted benchmark loses nothing.
    """
    from explorer.run import RunConfig, atomic_write_bytes, git_revision, run_search
    from explorer.storage import Storage, sqlite_url

    problem, agent, seed, budget, out = job
    workload, node, mode = problem.split("/")
    key = _key(problem, agent, seed, budget)
    path = Path(out) / f"{key}.json"
    if path.exists():
        return json.loads(path.read_text())
    storage = Storage(sqlite_url(Path(out) / f"{key}.sqlite"))
    try:
        record = storage.find_run(key)
        t0, c0 = time.perf_counter(), time.process_time()
        wall = cpu = None
        if record is None or record.status != "finished":
            cfg = RunConfig(workload, node, mode, agent, budget=budget, seed=seed)
            run_search(cfg, storage, key, Path(out) / f"{key}.ckpt", resume=record is not None)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            record = storage.find_run(key)
        rows = storage.evaluations(record.id)
    finally:
        storage.close()
    result = {"problem": problem, "agent": agent, "seed": seed, "budget": budget,
              "rewards": [r["reward"] for r in rows], "wall_s": wall, "cpu_s": cpu,
              "admissible": sum(r["admissible"] for r in rows),
              "git_revision": record.git_revision, "current_revision": git_revision(),
              "hyperparams": json.loads(record.hyperparams)}
    atomic_write_bytes(path, json.dumps(result).encode())
    return result


def _available(agents: list[str]) -> tuple[list[str], list[str]]:
    from explorer.agents import agent_class

    ok, notes = [], []
    for a in agents:
        try:
            agent_class(a)
            ok.append(a)
        except ValueError as e:
            notes.append(f"skipped {a}: {e}")
    return ok, notes


def _evals_to(rewards: list[float], target: float) -> int | None:
    best = -float("inf")
    for i, r in enumerate(rewards):
        best = max(best, r)
        if best >= target:
            return i + 1
    return None


def analyse(results: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Per problem and agent: median best reward and evaluations to the 95 % target."""
    table = []
    for problem in dict.fromkeys(r["problem"] for r in results):
        runs = [r for r in results if r["problem"] == problem]
        r_star = max(max(r["rewards"]) for r in runs)
        rand = [x for r in runs if r["agent"] == "random" for x in r["rewards"]]
        r0 = statistics.median(rand) if rand else statistics.median(x for r in runs for x in r["rewards"])
        target = r0 + 0.95 * (r_star - r0)
        for agent in dict.fromkeys(r["agent"] for r in runs):
            mine = [r for r in runs if r["agent"] == agent]
            reach = [_evals_to(r["rewards"], target) for r in mine]
            hits = sorted(x for x in reach if x is not None)
            finite = sorted(x if x is not None else budget + 1 for x in reach)
            med = statistics.median(finite)
            walls = [r["wall_s"] for r in mine if r["wall_s"] is not None]
            cpus = [r["cpu_s"] for r in mine if r.get("cpu_s") is not None]
            table.append({
                "problem": problem, "agent": agent, "seeds": len(mine),
                "median_best_reward": statistics.median(max(r["rewards"]) for r in mine),
                "best_reward": max(max(r["rewards"]) for r in mine),
                "target_reward": target, "best_anyone": r_star, "random_median": r0,
                "median_evals_to_target": None if med > budget else med,
                "seeds_reaching_target": len(hits),
                "median_admissible": statistics.median(r["admissible"] for r in mine),
                "median_wall_s": statistics.median(walls) if walls else None,
                "median_cpu_s": statistics.median(cpus) if cpus else None,
            })
    return table


def sac_moe_wins(table: list[dict[str, Any]]) -> dict[str, bool]:
    """Per problem: is sac-moe's median best reward >= every baseline's?"""
    out = {}
    for problem in dict.fromkeys(r["problem"] for r in table):
        rows = {r["agent"]: r["median_best_reward"] for r in table if r["problem"] == problem}
        if "sac-moe" in rows and len(rows) > 1:
            out[problem] = rows["sac-moe"] >= max(v for a, v in rows.items() if a != "sac-moe")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--agents", default=",".join(AGENTS))
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="build/bench_search")
    ap.add_argument("--report", action="store_true",
                    help="tabulate the finished runs under --out only; run nothing")
    args = ap.parse_args()
    if args.budget < 1 or args.seeds < 1 or args.jobs < 1:
        print("error: --budget, --seeds and --jobs must be positive", file=sys.stderr)
        sys.exit(2)
    agents, notes = _available([a.strip() for a in args.agents.split(",") if a.strip()])
    problems = [p.strip() for p in args.problems.split(",") if p.strip()]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    jobs = [(p, a, s, args.budget, args.out) for p in problems for a in agents for s in range(args.seeds)]
    results = []
    if args.report:     # only the runs that finished: no new work
        for j in jobs:
            path = Path(args.out) / f"{_key(*j[:4])}.json"
            if path.exists():
                results.append(json.loads(path.read_text()))
    else:
        rank = {a: i for i, a in enumerate(_COST_ORDER)}
        # tpe (~4x the CPU of any other agent) after all the others; seed by seed before that
        todo = sorted(jobs, key=lambda j: (j[1] == "tpe", j[2], rank.get(j[1], len(rank)), j[0]))
        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            for fut in cf.as_completed([pool.submit(_one, j) for j in todo]):
                r = fut.result()
                results.append(r)
                if not args.json:
                    print(f"  done {r['problem']} {r['agent']} seed {r['seed']}: best "
                          f"{max(r['rewards']):.4f}"
                          + (f" ({r['wall_s']:.0f} s, {r['cpu_s']:.0f} s CPU)" if r["wall_s"]
                             else " (reused)"), file=sys.stderr, flush=True)
    order = {(p, a, s): i for i, (p, a, s, _, _) in enumerate(jobs)}
    results.sort(key=lambda r: order[(r["problem"], r["agent"], r["seed"])])
    table = analyse(results, args.budget)
    if args.json:
        print(json.dumps({"budget": args.budget, "seeds": args.seeds, "notes": notes, "table": table,
                          "sac_moe_at_or_above_best_baseline": sac_moe_wins(table)}, indent=2))
        return
    for n in notes:
        print(n)
    print(f"budget {args.budget} evaluations, {args.seeds} seeds; target = R0 + 0.95 (R* - R0)")
    print("| problem | agent | median best reward | best | evals to target (median) "
          "| seeds reaching | median admissible | median wall s | median CPU s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for row in table:
        ev = row["median_evals_to_target"]
        wall, cpu = row["median_wall_s"], row["median_cpu_s"]
        print(f"| {row['problem']} | {row['agent']} | {row['median_best_reward']:.4f} | "
              f"{row['best_reward']:.4f} | {'> ' + str(args.budget) if ev is None else f'{ev:g}'} | "
              f"{row['seeds_reaching_target']}/{row['seeds']} | {row['median_admissible']:g} | "
              f"{'-' if wall is None else f'{wall:.0f}'} | {'-' if cpu is None else f'{cpu:.0f}'} |")
    for problem in dict.fromkeys(r["problem"] for r in table):
        row = next(r for r in table if r["problem"] == problem)
        print(f"{problem}: R* = {row['best_anyone']:.4f}, R0 (random median) = "
              f"{row['random_median']:.4f}, target = {row['target_reward']:.4f}")
    wins = sac_moe_wins(table)
    if wins:
        print(f"sac-moe at or above the best baseline's median best reward on "
              f"{sum(wins.values())} of {len(wins)} problems "
              f"({', '.join(p for p, w in wins.items() if w) or 'none'})")


if __name__ == "__main__":
    main()
