"""Workloads: model descriptions from HF configs and their per-phase operator graphs."""

from .builder import BYTES_PER_ELEM, FLOPS_PER_ELEM, build_graph
from .graph import OP_KINDS, PHASES, Op, OpGraph, causal_pairs
from .hf import read_config_json, workload_from_hf
from .model import DecoderConfig, VisionConfig, VlmConfig, Workload
from .registry import WORKLOAD_NAMES, builtin_provenance, load_workload, workload_summary

__all__ = [
    "BYTES_PER_ELEM", "FLOPS_PER_ELEM", "OP_KINDS", "PHASES", "WORKLOAD_NAMES",
    "DecoderConfig", "Op", "OpGraph", "VisionConfig", "VlmConfig", "Workload",
    "build_graph", "builtin_provenance", "causal_pairs", "load_workload", "read_config_json",
    "workload_from_hf", "workload_summary",
]
