"""The source paper's headline designs evaluated in our PPA model and reward.

Usage: python benchmarks/paper_designs.py [--json]

Builds the meshes the seed paper reports (reference/seed_paper.md §10: Llama 3.1 8B at
3 nm on 41×42 tiles, P1 Tab. 11/16; SmolVLM at 3 nm on 2×4 and at 28 nm on 3×4 tiles,
P1 Tab. 19) as points of the design space, with the per-tile parameters of P1 Tab. 16
(FETCH 2, VLEN 2048, DMEM 64 KiB, flit 2048 bits, weights in on-die ROM; what the paper
does not give is left at the design schema's defaults), and prints what our model says of
them: tokens/s, power, area, limiting bound and violations. benchmarks/RESULTS.md
(section `campaign`) compares them with the campaign's picks.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from explorer.env import AsicDesignEnv
from explorer.space import Choices, to_batch

#: (workload, node, mode, rows, cols): the paper's meshes (seed_paper.md §10.1, §10.2).
CASES = (("llama3.1-8b", "3nm", "performance", 41, 42),
         ("smolvlm-256m", "3nm", "low-power", 2, 4),
         ("smolvlm-256m", "28nm", "low-power", 3, 4))
#: P1 Tab. 16 medians (FETCH 2, VLEN 2048 max, DMEM 64 KiB, STANUM 3); IMEM 8 KiB covers
#: the VLEN-2048 kernels; the remaining fields are the design schema's defaults.
TILE = {"fetch": 2, "vlen": 2048, "stations": 3, "xdp": 1, "vdp": 2, "xr_wp": 1, "vr_wp": 2,
        "dmem_kib": 64, "imem_kib": 8, "wmem_kind": "rom"}


def evaluate_case(workload: str, node: str, mode: str, rows: int, cols: int) -> dict[str, Any]:
    """PPA and reward of the paper's mesh for one problem."""
    env = AsicDesignEnv(workload, node, mode)
    ctx = env.space_context
    choices = Choices(rows=rows, cols=cols, flit_bits=2048, weights="on_die", classes=1,
                      layout="row_bands", shares=(0.0,), tiles=(TILE,), offchip=None,
                      vdd_v=ctx.vdd_lo_v, channels=1, groups=min(rows * cols, 64), mix=0.5,
                      stage=12)
    env._choices = choices          # the environment's terminal step for a given point
    _, reward, _, _, info = env.finish(env.problem.evaluate(to_batch([choices], ctx)), 0)
    p = info["ppa"]
    return {"problem": f"{workload}/{node}/{mode}", "mesh": f"{rows}x{cols}", "reward": reward,
            "feasible": info["feasible"], "prefill_tokens_per_s": p.get("prefill_tokens_per_s"),
            "decode_tokens_per_s": p.get("decode_tokens_per_s"), "power_mw": p["power_mw"],
            "area_mm2": p["area_mm2"], "area_breakdown_mm2": p.get("area_breakdown_mm2"),
            "peak_flops_per_s": p.get("peak_flops_per_s"), "bound": p["bound"],
            "violations": p["violations"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [evaluate_case(*c) for c in CASES]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['problem']} {r['mesh']}: prefill {r['prefill_tokens_per_s']:,.4g} / decode "
              f"{r['decode_tokens_per_s']:,.4g} tokens/s, {r['power_mw']:,.4g} mW, "
              f"{r['area_mm2']:,.4g} mm² (weight ROM {r['area_breakdown_mm2']['wmem']:,.4g}), "
              f"peak {r['peak_flops_per_s']:.3g} FLOP/s, bound {r['bound']}, "
              f"feasible {r['feasible']}, reward {r['reward']:.3f}")
        for v in r["violations"]:
            print(f"    violation: {v}")


if __name__ == "__main__":
    main()
