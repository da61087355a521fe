"""The unified PPA reward of the explorer (two modes) and its printed formula.

Follows the source paper's reward (``seed_paper.md`` §6.1, Eqs. 34-44)::

    R = a*Perf_n - b*Power_n - c*Area_n + B_feasible - P_violation - P_memory - P_hazard - P_target

with (a, b, c) = (0.4, 0.4, 0.2) in ``performance`` mode (clock = the node's fmax) and
(0.2, 0.6, 0.2) in ``low-power`` mode (clock = 10 MHz), and fills the gaps the paper
leaves (every choice is in :func:`formula_text`, printed in reports):

* Perf is a *value* on a logarithmic scale (tokens/s span decades; each doubling is worth
  the same): per phase over [roofline of one VLEN-128 tile / 100, roofline of the largest
  design the space allows (reticle- or 64x64-limited, densest tile)] at the mode's clock,
  then averaged over the workload's phases (prefill, decode, and encode for VLMs).
  Power and area are *costs* on a linear scale (every watt and mm^2 costs the same),
  as fractions of the mode's power budget and of the reticle. All three are clipped to
  [0, 1]; what lies beyond is charged by the penalties. The ranges come from physical
  bounds of node, workload and clock, never from designs seen. (With the paper's equal
  perf and power weights, log-scaled power would make performance mode scale-neutral
  and drive it to the smallest design; docs/explorer.md shows the numbers.)
* Feasible = :attr:`PPAResult.feasible` (no hard physical violation). B_feasible =
  s * (1 + m), m = clip((P_budget - P) / P_budget, -1, 1), s = 1, as the paper.
* Power budget: performance mode 738 W = reticle 858 mm^2 x 0.86 W/mm^2, the most one
  reticle-sized die can dissipate at the cooling limit the node data uses (H100 class);
  low-power mode 13 mW (the paper's SmolVLM claim, Tab. 19, taken as the target).
  P_violation = s * (1 + v) * v^2 with v = log10(P / P_budget) when over budget: cubic in
  decades over budget, so it stays finite and of order 1-50.
* P_memory (violations 4, 8, 16, 128, 256): 1 per violated kind, plus the decades by
  which on-die weights overflow the reticle at the node's ROM density (256).
* P_hazard (physical-implementation hazards, our reading of the paper's hazard term,
  whose RAW/WAR/WAW stalls the kernel cycle model already charges to Perf): violations
  1 (reticle), 2 (power density), 32 (clock), 64 (supply): 1 each plus the decades by
  which area / power density exceed their limits.
* P_target (low-power only): decode slower than 5 tokens/s costs 1 + the decades short.
  5 tokens/s ~ silent reading speed: 238 words/min (Brysbaert 2019, J. Memory and
  Language 109, 104047) x ~1.33 tokens/word (OpenAI: 1 token ~ 0.75 English words).

The reward is finite for every design: every log is of a value clamped to >= 1e-30.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import contract as C
from .ppa.area import (
    CHIP_OVERHEAD_FRACTION,
    tile_features,
    tile_logic_um2,
    tile_sram_um2,
)
from .ppa.model import PPAResult
from .ppa.problem import Problem
from .tech import MAX_POWER_DENSITY_W_PER_MM2
from .tech.node import RETICLE_MM2

__all__ = ["MODES", "Mode", "RewardContext", "reward_context", "reward", "terms", "formula_text",
           "objectives"]


@dataclass(frozen=True)
class Mode:
    """A search mode: PPA weights, clock rule, power budget and service target."""

    name: str
    w_perf: float
    w_power: float
    w_area: float
    clock: str                      # "fmax" or a fixed MHz figure as text
    power_budget_mw: float
    min_decode_tokens_per_s: float  # 0 = no latency target

    @property
    def weights(self) -> tuple[float, float, float]:
        s = self.w_perf + self.w_power + self.w_area
        return self.w_perf / s, self.w_power / s, self.w_area / s


MODES: Mapping[str, Mode] = {
    "performance": Mode("performance", 0.4, 0.4, 0.2, "fmax",
                        RETICLE_MM2 * MAX_POWER_DENSITY_W_PER_MM2 * 1e3, 0.0),
    "low-power": Mode("low-power", 0.2, 0.6, 0.2, "10", 13.0, 5.0),
}

#: Feasibility bonus / violation scale (the paper's s_mag; Tab. 4 gives B in [0, 2]).
S_MAG = 1.0
#: Weight of each memory / hazard violation kind.
LAMBDA_MEM = 1.0
LAMBDA_HAZ = 1.0
#: Headroom below one tile's compute roofline for memory/NoC-bound designs (decades).
PERF_FLOOR_DECADES = 2.0
_TINY = 1e-30
_MEMORY_BITS = (4, 8, 16, 128, 256)
_HAZARD_BITS = (1, 2, 32, 64)


@dataclass(frozen=True)
class RewardContext:
    """Normalisation ranges and constraints of one (workload, node, mode).

    ``perf_range`` maps each phase to its (lo, hi) tokens/s (log scale); power and area
    are normalised linearly by ``mode.power_budget_mw`` and ``area_budget_mm2``.
    """

    mode: Mode
    clock_mhz: float
    perf_range: Mapping[str, tuple[float, float]]
    area_budget_mm2: float
    weights_rom_mm2: float           # all weights in ROM at this node's density

    def __post_init__(self) -> None:
        for name, (lo, hi) in self.perf_range.items():
            if not (0 < lo < hi and math.isfinite(hi)):
                raise ValueError(f"RewardContext {name} range must satisfy 0 < lo < hi, not {lo}, {hi}")


def mode_clock_mhz(mode: Mode, fmax_mhz: float) -> float:
    return fmax_mhz if mode.clock == "fmax" else float(mode.clock)


def reward_context(problem: Problem, mode: str) -> RewardContext:
    """Ranges from physical bounds of ``problem``'s node and workload at ``mode``'s clock."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    m = MODES[mode]
    node = problem.tech
    f_hz = mode_clock_mhz(m, node.fmax_mhz) * 1e6

    def tile(vlen: int) -> tuple[float, int]:
        """(die mm^2 of one minimal tile of ``vlen``, its FP16 lanes)."""
        feats = tile_features(vlen, 1, 1, 1, 1, 1, 1, 64)
        logic = float(tile_logic_um2(feats, 1, 1, node)) * 1e-6
        sram = float(tile_sram_um2(16, 1, 0, True, 1, node)[0]) * 1e-6
        return (logic + sram) * (1 + CHIP_OVERHEAD_FRACTION), C.lanes_fp16(vlen)

    _, l_min = tile(128)
    a_big, l_big = tile(2048)
    max_lanes = min(RETICLE_MM2 / a_big, 64 * 64) * l_big
    perf = {}
    for name, pt in problem.tables.phases.items():
        flops_tok = pt.flops / max(pt.tokens, 1)
        hi = max_lanes * 2 * f_hz / flops_tok
        lo = l_min * 2 * f_hz / flops_tok / 10 ** PERF_FLOOR_DECADES
        perf[name] = (lo, hi)
    weights_mm2 = problem.tables.weight_bytes * 8 * node.rom_um2_per_bit * 1e-6
    return RewardContext(mode=m, clock_mhz=f_hz / 1e6, perf_range=perf,
                         area_budget_mm2=RETICLE_MM2, weights_rom_mm2=weights_mm2)


def _lognorm(x: float, lo: float, hi: float) -> float:
    v = (math.log10(max(x, _TINY)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
    return min(max(v, 0.0), 1.0)


def _decades_over(x: float, limit: float) -> float:
    return max(0.0, math.log10(max(x, _TINY) / limit))


def objectives(result: PPAResult, i: int, context: RewardContext) -> dict[str, float]:
    """The normalised (perf, power, area) of design ``i``, each in [0, 1]."""
    perf = [_lognorm(float(ph.tokens_per_s[i]), *context.perf_range[name])
            for name, ph in result.phases.items()]
    return {"perf": float(np.mean(perf)),
            "power": min(max(float(result.power_mw[i]) / context.mode.power_budget_mw, 0.0), 1.0),
            "area": min(max(float(result.area_mm2[i]) / context.area_budget_mm2, 0.0), 1.0)}


def terms(result: PPAResult, i: int, context: RewardContext) -> dict[str, float]:
    """Every term of the reward of design ``i`` (``total`` is the reward)."""
    mode = context.mode
    a, b, c = mode.weights
    obj = objectives(result, i, context)
    viol = int(result.violations[i])
    power = float(result.power_mw[i])
    budget = mode.power_budget_mw
    feasible = viol == 0
    margin = min(max((budget - power) / budget, -1.0), 1.0)
    bonus = S_MAG * (1.0 + margin) if feasible else 0.0
    v = _decades_over(power, budget)
    p_viol = S_MAG * (1.0 + v) * v * v
    p_mem = LAMBDA_MEM * sum(1.0 for bit in _MEMORY_BITS if viol & bit)
    if viol & 256:
        p_mem += LAMBDA_MEM * _decades_over(context.weights_rom_mm2, RETICLE_MM2)
    p_haz = LAMBDA_HAZ * sum(1.0 for bit in _HAZARD_BITS if viol & bit)
    if viol & 1:
        p_haz += LAMBDA_HAZ * _decades_over(float(result.area_mm2[i]), RETICLE_MM2)
    if viol & 2:
        density = float(result.die_power_mw[i]) * 1e-3 / max(float(result.area_mm2[i]), 1e-9)
        p_haz += LAMBDA_HAZ * _decades_over(density, MAX_POWER_DENSITY_W_PER_MM2)
    p_target = 0.0
    if mode.min_decode_tokens_per_s > 0 and "decode" in result.phases:
        dec = float(result.phases["decode"].tokens_per_s[i])
        if dec < mode.min_decode_tokens_per_s:
            p_target = S_MAG * (1.0 + _decades_over(mode.min_decode_tokens_per_s, max(dec, _TINY)))
    total = (a * obj["perf"] - b * obj["power"] - c * obj["area"] + bonus
             - p_viol - p_mem - p_haz - p_target)
    return {"perf": obj["perf"], "power": obj["power"], "area": obj["area"], "bonus": bonus,
            "power_violation": p_viol, "memory": p_mem, "hazard": p_haz, "target": p_target,
            "total": float(total)}


def reward(result: PPAResult, i: int, mode: str, context: RewardContext) -> float:
    """The reward of design ``i`` of ``result`` (finite for every design)."""
    if mode != context.mode.name:
        raise ValueError(f"mode {mode!r} does not match the context's mode {context.mode.name!r}")
    return terms(result, i, context)["total"]


def admissible(result: PPAResult, i: int, context: RewardContext) -> bool:
    """Feasible, within the power budget and meeting the mode's latency target."""
    t = context.mode.min_decode_tokens_per_s
    dec = result.phases.get("decode")
    return (bool(result.feasible[i]) and float(result.power_mw[i]) <= context.mode.power_budget_mw
            and (t <= 0 or dec is None or float(dec.tokens_per_s[i]) >= t))


def formula_text(mode: str) -> str:
    """The reward of ``mode`` as printed in reports."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    m = MODES[mode]
    a, b, c = m.weights
    clock = "the node's fmax" if m.clock == "fmax" else f"{m.clock} MHz"
    lines = [
        f"mode {m.name}: clock = {clock}, power budget P_b = {m.power_budget_mw:g} mW"
        + (f", decode target T = {m.min_decode_tokens_per_s:g} tokens/s" if m.min_decode_tokens_per_s else ""),
        f"R = {a:.2f}*Perf_n - {b:.2f}*Power_n - {c:.2f}*Area_n + B_feasible - P_violation - P_memory "
        "- P_hazard" + (" - P_target" if m.min_decode_tokens_per_s else ""),
        "  Perf_n = mean over phases of clip((log10 T - log10 T_lo) / (log10 T_hi - log10 T_lo), 0, 1),",
        f"    T = tokens/s, T_lo = one VLEN-128 tile's compute roofline / {10 ** PERF_FLOOR_DECADES:g}, "
        "T_hi = roofline of the largest design (reticle or 64x64 tiles of VLEN 2048)",
        f"  Power_n = clip(P / P_b, 0, 1); Area_n = clip(A / {RETICLE_MM2:g} mm^2 reticle, 0, 1)",
        f"  B_feasible = {S_MAG:g}*(1 + clip((P_b - P)/P_b, -1, 1)) if no hard violation, else 0",
        f"  P_violation = {S_MAG:g}*(1 + v)*v^2, v = max(0, log10(P / P_b))",
        f"  P_memory = {LAMBDA_MEM:g} per violated kind (weights/WMEM, KV/DMEM, activations/DMEM, "
        "IMEM, on-die weight density) + decades on-die ROM weights exceed the reticle",
        f"  P_hazard = {LAMBDA_HAZ:g} per violated kind (reticle, power density, clock, supply) "
        "+ decades over the reticle / power-density limit",
    ]
    if m.min_decode_tokens_per_s:
        lines.append(f"  P_target = {S_MAG:g}*(1 + log10(T / decode tokens/s)) if decode < T, else 0")
    return "\n".join(lines)
