"""sac-moe: wall time of a 2,000-evaluation run, and best reward against the baselines.

Usage:
  python benchmarks/sac_moe.py [--json]                      # timing run (target < 300 s)
  python benchmarks/sac_moe.py --compare [--seeds 0,1,2] [--agents sac-moe,sa,ga,tpe,...]
                               [--problems svlm28lp,...] [--workers 2] [--json]

Every run goes through ``explorer.run.run_search`` (storage and checkpoints included) with a
temporary SQLite database. ``--compare`` reports, per problem and agent, the median over
seeds of the best reward found in ``--budget`` evaluations, and whether sac-moe is at or
above the best baseline's median (the target: on at least 3 of the 4 problems).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from explorer.run import RunConfig, run_search  # noqa: E402
from explorer.storage import Storage, sqlite_url  # noqa: E402

#: The four benchmark problems: the source paper's two headline settings (SmolVLM
#: low-power, Llama 3.1 8B performance), each at its oldest and newest node.
PROBLEMS: dict[str, dict[str, str]] = {
    "svlm28lp": {"workload": "smolvlm-256m", "node": "28nm", "mode": "low-power"},
    "svlm3lp": {"workload": "smolvlm-256m", "node": "3nm", "mode": "low-power"},
    "llama3perf": {"workload": "llama3.1-8b", "node": "3nm", "mode": "performance"},
    "llama28perf": {"workload": "llama3.1-8b", "node": "28nm", "mode": "performance"},
}
BASELINES = ("random", "grid", "tpe", "nsga2", "sa", "ga")


def one_run(agent: str, problem: str, seed: int, budget: int) -> dict[str, object]:
    """Run ``agent`` on ``problem`` and return its best reward and wall time."""
    with tempfile.TemporaryDirectory() as tmp:
        storage = Storage(sqlite_url(Path(tmp) / "results.sqlite"))
        config = RunConfig(agent=agent, budget=budget, seed=seed, **PROBLEMS[problem])
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_search(config, storage, "bench", Path(tmp) / "checkpoint.pkl")
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        rewards = [r["reward"] for r in storage.evaluations(result.run.id)]
        storage.close()
    return {"agent": agent, "problem": problem, "seed": seed, "budget": budget,
            "best_reward": max(rewards), "seconds": seconds, "cpu_seconds": cpu_seconds}


def compare(runs: list[dict[str, object]], agents: list[str],
            problems: list[str]) -> dict[str, object]:
    table: dict[str, dict[str, float]] = {}
    for p in problems:
        table[p] = {a: statistics.median(float(r["best_reward"]) for r in runs
                                         if r["problem"] == p and r["agent"] == a)
                    for a in agents}
    wins = {p: table[p]["sac-moe"] >= max(v for a, v in table[p].items() if a != "sac-moe")
            for p in problems if "sac-moe" in table[p] and len(table[p]) > 1}
    return {"median_best_reward": table, "sac_moe_at_or_above_best_baseline": wins,
            "problems_won": sum(wins.values())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--compare", action="store_true")
    ap.add_argument("--budget", type=int, default=2000)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--agents", default=",".join(("sac-moe", *BASELINES)))
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    if not args.compare:
        out = one_run("sac-moe", "svlm28lp", 0, args.budget)
        out["target_seconds"] = 300.0
        if args.json:
            print(json.dumps(out, indent=2))
        else:
            print(f"sac-moe, {args.budget} evaluations of smolvlm-256m/28nm/low-power: "
                  f"{out['seconds']:.1f} s wall, {out['cpu_seconds']:.1f} s CPU "
                  f"(target < 300 s on 2 cores), best reward "
                  f"{out['best_reward']:.4f}")
        return
    agents = args.agents.split(",")
    problems = args.problems.split(",")
    jobs = [(a, p, int(s), args.budget) for p in problems for a in agents
            for s in args.seeds.split(",")]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(one_run, *zip(*jobs, strict=True)))
    out = {"runs": runs, **compare(runs, agents, problems)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"median best reward over seeds {args.seeds}, budget {args.budget}")
    print(f"{'problem':<12}" + "".join(f"{a:>10}" for a in agents))
    for p in problems:
        print(f"{p:<12}" + "".join(f"{out['median_best_reward'][p][a]:>10.4f}" for a in agents))
    print(f"sac-moe at or above the best baseline on {out['problems_won']} of {len(problems)}")


if __name__ == "__main__":
    main()
