"""A design problem (workload x node x serving settings) and one-call evaluation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from ..design import OFFCHIP_KINDS, Design
from ..errors import InputError
from ..tech import load_node, load_offchip
from ..tech.node import OffchipMemory, TechNode
from ..workloads import build_graph, load_workload
from ..workloads.model import Workload
from .batch import DesignBatch, from_designs
from .model import BOUNDS, PPAResult, evaluate
from .tables import WorkloadTables, build_tables

__all__ = ["Problem", "summarize"]


@dataclass(frozen=True)
class Problem:
    """What to evaluate designs on.

    Parameters
    ----------
    workload : str
        Built-in workload name or a config.json path.
    node : str
        Technology node name.
    seq_len : int
        Prompt length of the prefill phase.
    batch : int
        Sequences per execution (prefill prompts; decode sequences).
    kv_len : int
        Cached tokens per sequence during decode.
    images : int
        Images per encode execution (VLMs).
    dtype : str
        ``"fp16"`` or ``"int8"`` weights and activations.
    """

    workload: str
    node: str
    seq_len: int = 2048
    batch: int = 1
    kv_len: int = 2048
    images: int = 1
    dtype: str = "fp16"

    @cached_property
    def model(self) -> Workload:
        return load_workload(self.workload)

    @cached_property
    def tech(self) -> TechNode:
        return load_node(self.node)

    @cached_property
    def offchip(self) -> tuple[OffchipMemory, ...]:
        return tuple(load_offchip(k) for k in OFFCHIP_KINDS)

    @cached_property
    def tables(self) -> WorkloadTables:
        w = self.model
        phases = [p for p in ("encode", "prefill", "decode") if p in w.phases]
        try:
            graphs = [build_graph(w, p, seq_len=self.seq_len, batch=self.batch,
                                  kv_len=self.kv_len, images=self.images, dtype=self.dtype)
                      for p in phases]
        except (TypeError, ValueError) as e:
            raise InputError(str(e)) from None
        return build_tables(w.name, graphs)

    def batch_of(self, designs: Sequence[Design]) -> DesignBatch:
        """Arrays of ``designs``; every design must be for this problem's node."""
        for d in designs:
            if load_node(d.node).name != self.tech.name:
                raise InputError(f"design {d.name!r} is for node {d.node}, not {self.tech.name}")
        try:
            return from_designs(designs, self.tables)
        except ValueError as e:
            raise InputError(str(e)) from None

    def evaluate(self, designs: Sequence[Design] | DesignBatch) -> PPAResult:
        batch = designs if isinstance(designs, DesignBatch) else self.batch_of(designs)
        return evaluate(batch, self.tables, self.tech, self.offchip)


def _f(x: np.ndarray, i: int) -> float:
    return float(np.asarray(x)[i])


def summarize(result: PPAResult, i: int = 0) -> dict[str, Any]:
    """The headline figures of design ``i`` as plain JSON-ready values."""
    out: dict[str, Any] = {}
    for name, ph in result.phases.items():
        label = "encode_tokens_per_s" if name == "encode" else f"{name}_tokens_per_s"
        out[label] = _f(ph.tokens_per_s, i)
    out["power_mw"] = _f(result.power_mw, i)
    out["die_power_mw"] = _f(result.die_power_mw, i)
    out["area_mm2"] = _f(result.area_mm2, i)
    dec = result.phases.get("decode")
    if dec is not None:
        out["energy_pj_per_token"] = _f(dec.power_mw, i) * 1e-3 / max(_f(dec.tokens_per_s, i), 1e-30) * 1e12
    out["peak_flops_per_s"] = _f(result.peak_flops_per_s, i)
    out["offchip_bytes_per_s"] = _f(result.offchip_bytes_per_s, i)
    out["feasible"] = bool(result.feasible[i])
    out["violations"] = result.reasons(i)
    out["bound"] = {name: BOUNDS[int(ph.bound[i])] for name, ph in result.phases.items()}
    out["phases"] = {
        name: {
            "tokens_per_s": _f(ph.tokens_per_s, i),
            "latency_s": _f(ph.latency_s, i),
            "power_mw": _f(ph.power_mw, i),
            "energy_pj_per_token": _f(ph.power_mw, i) * 1e-3 / max(_f(ph.tokens_per_s, i), 1e-30) * 1e12,
            "bound": BOUNDS[int(ph.bound[i])],
            "offchip_bytes_per_s": _f(ph.offchip_bytes_per_s, i),
            "dynamic_energy_pj": {k: _f(v, i) for k, v in ph.energy_breakdown_pj.items()},
        } for name, ph in result.phases.items()
    }
    out["power_breakdown_mw"] = {"clock": _f(result.clock_power_mw, i),
                                 "leakage": _f(result.leakage_mw, i)}
    out["area_breakdown_mm2"] = {k: _f(v, i) for k, v in result.area_breakdown_mm2.items()}
    out["fmax_mhz"] = _f(result.fmax_mhz, i)
    out["kv_offchip"] = bool(result.kv_offchip[i])
    return out
