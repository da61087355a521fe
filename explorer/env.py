"""The design MDP as a gymnasium environment (``llm2silicon/AsicDesign-v0``).

One episode builds one design in ``len(STAGES)`` steps (``explorer.space`` documents
the stages and action dims) and ends with one PPA evaluation and the terminal reward of
``explorer.reward``; every other step's reward is 0.

Spaces
------
action : ``Dict({"discrete": MultiDiscrete(nvec), "continuous": Box(-1, 1, (6,), float32)})``,
    the same at every step; ``nvec`` and the dim names are ``explorer.space.DISCRETE`` /
    ``CONTINUOUS``.
observation : ``Box(-5, 5, (n,), float32)``, the concatenation of (slices in
    ``env.agent_spaces.obs_slices``) ``stage`` (one-hot of the step, plus "done"),
    ``mode`` (one-hot + log clock), ``workload`` (log params, weight bytes, FLOPs/token per
    phase, KV bytes/token, sequence settings, FLOP mix over op kinds), ``node`` (log
    figures of the node normalised over the seven nodes: fmax, Vdd, MAC/SRAM/ROM energies,
    leakage, densities, wires) and ``design`` (the partial design, ``space.encode``).

``info`` at every step: ``action_mask`` (tuple of bool arrays, one per discrete dim),
``continuous_mask`` (bool per continuous dim), ``stage`` (name), ``step``, ``episode``.
At the terminal step also: ``choices`` (JSON-ready point of the space;
:meth:`AsicDesignEnv.current_design` decodes it into a :class:`explorer.design.Design`), ``ppa`` (``summarize``), ``objectives`` and ``terms``
of the reward, ``feasible``, ``violations`` (bit flags), ``admissible``, ``projected`` (masked choices the env had
to move to the nearest legal option during the episode).

For batched evaluation the search loop may call :meth:`AsicDesignEnv.advance` instead of
``step`` and finish episodes with :meth:`AsicDesignEnv.finish` on a shared PPA result;
``step`` is exactly ``advance`` + one-design evaluation (``space.to_batch``) + ``finish``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .agents.base import EnvSpaces
from .design import Design
from .ppa.model import PPAResult
from .ppa.problem import Problem, summarize
from .reward import MODES, admissible, mode_clock_mhz, reward_context, terms
from .space import (
    CONTINUOUS,
    DESIGN_FEATURES,
    DISCRETE,
    STAGES,
    Choices,
    SpaceContext,
    apply,
    continuous_mask,
    decode,
    encode,
    masks,
    to_batch,
    vdd_range,
)
from .tech import NODE_NAMES, load_node
from .workloads.graph import OP_KINDS

__all__ = ["ENV_ID", "AsicDesignEnv", "space_context", "NODE_FEATURES"]

ENV_ID = "llm2silicon/AsicDesign-v0"

#: Node figures in the observation (log10, normalised over the seven nodes).
NODE_FEATURES = ("fmax_mhz", "vdd_nom_v", "fp16_mac_pj", "sram_read_pj_per_bit",
                 "rom_read_pj_per_bit", "logic_leakage_mw_per_mm2", "sram_leakage_mw_per_mm2",
                 "nand2_area_um2", "sram_um2_per_bit", "rom_um2_per_bit", "wire_pj_per_bit_mm",
                 "router_pj_per_bit", "feature_nm")
_PHASES = ("encode", "prefill", "decode")
_OBS_BOUND = 5.0


def space_context(problem: Problem, mode: str) -> SpaceContext:
    """What ``explorer.space`` needs to decode designs for ``problem`` in ``mode``."""
    clock = mode_clock_mhz(MODES[mode], problem.tech.fmax_mhz)
    lo, hi = vdd_range(problem.tech, clock)
    t = problem.tables
    return SpaceContext(node=problem.tech, clock_mhz=clock, vdd_lo_v=lo, vdd_hi_v=hi,
                        workload=t.workload, op_names=t.op_names, op_flops=t.op_cost,
                        op_weight_bytes=t.op_weight_bytes)


@lru_cache(maxsize=1)
def _node_stats() -> tuple[np.ndarray, np.ndarray]:
    logs = np.array([[np.log10(float(getattr(load_node(n), f))) for f in NODE_FEATURES]
                     for n in NODE_NAMES])
    mid = 0.5 * (logs.max(0) + logs.min(0))
    half = np.maximum(0.5 * (logs.max(0) - logs.min(0)), 1e-6)
    return mid, half


def _node_features(problem: Problem) -> np.ndarray:
    mid, half = _node_stats()
    x = np.array([np.log10(float(getattr(problem.tech, f))) for f in NODE_FEATURES])
    return (x - mid) / half


def _workload_features(problem: Problem) -> np.ndarray:
    t = problem.tables
    f = [np.log10(max(t.params, 1)) / 11, np.log10(max(t.weight_bytes, 1)) / 11]
    for ph in _PHASES:
        pt = t.phases.get(ph)
        f += [0.0, 0.0] if pt is None else [1.0, np.log10(max(pt.flops / max(pt.tokens, 1), 1)) / 11]
    dec_meta = t.meta.get("decode", {})
    f += [np.log10(max(float(dec_meta.get("kv_bytes_per_token", 0) or 0), 1)) / 7,
          np.log10(problem.seq_len) / 5, np.log10(problem.kv_len + 1) / 5, np.log10(problem.batch) / 3]
    mix = np.zeros(len(OP_KINDS))
    for pt in t.phases.values():
        np.add.at(mix, pt.u_kind[pt.op_uid], pt.u_flops[pt.op_uid])
    f += list(mix / max(mix.sum(), 1.0))
    return np.array(f)


class AsicDesignEnv(gym.Env):
    """Build one design per episode; terminal reward = the unified PPA objective.

    Parameters
    ----------
    workload : str
        Built-in workload name or config.json path.
    node : str
        Technology node.
    mode : str
        ``"performance"`` or ``"low-power"``.
    seq_len, batch, kv_len : int
        Serving settings of the problem (prefill prompt, sequences, cached tokens).
    problem : Problem or None
        Reuse an existing problem (its tables are cached); overrides the four above.
    """

    metadata = {"render_modes": []}

    def __init__(self, workload: str = "smolvlm-256m", node: str = "28nm", mode: str = "low-power",
                 seq_len: int = 2048, batch: int = 1, kv_len: int = 2048,
                 problem: Problem | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.problem = problem or Problem(workload=workload, node=node, seq_len=seq_len,
                                          batch=batch, kv_len=kv_len)
        self.mode = mode
        self.reward_context = reward_context(self.problem, mode)
        self.space_context = space_context(self.problem, mode)
        self.n_steps = len(STAGES)
        self.action_space = spaces.Dict({
            "discrete": spaces.MultiDiscrete(np.array([len(v) for v in DISCRETE.values()], np.int64)),
            "continuous": spaces.Box(-1.0, 1.0, (len(CONTINUOUS),), np.float32),
        })
        mode_f = np.array([mode == "performance", mode == "low-power",
                           np.log10(self.space_context.clock_mhz) / 3.0], float)
        self._static = np.concatenate([mode_f, _workload_features(self.problem),
                                       _node_features(self.problem)])
        sizes = {"stage": self.n_steps + 1, "mode": 3,
                 "workload": len(self._static) - 3 - len(NODE_FEATURES),
                 "node": len(NODE_FEATURES), "design": DESIGN_FEATURES}
        slices, at = {}, 0
        for k, n in sizes.items():
            slices[k] = slice(at, at + n)
            at += n
        self.observation_space = spaces.Box(-_OBS_BOUND, _OBS_BOUND, (at,), np.float32)
        self.agent_spaces = EnvSpaces(
            observation_space=self.observation_space, action_space=self.action_space,
            episode_steps=self.n_steps, obs_slices=slices, discrete_names=tuple(DISCRETE),
            continuous_names=CONTINUOUS, stage_names=tuple(s.name for s in STAGES))
        self._choices = Choices()
        self._episode = -1
        self._projected = 0
        self._mask: tuple[np.ndarray, ...] | None = None

    # --- gymnasium API --------------------------------------------------------------
    def reset(self, *, seed: int | None = None,
              options: Mapping[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "episode" in options:
            self._episode = int(options["episode"])
        else:   # a seeded reset restarts the episode count (deterministic infos)
            self._episode = 0 if seed is not None else self._episode + 1
        self._choices = Choices()
        self._projected = 0
        return self._obs(), self._info()

    def step(self, action: Mapping[str, np.ndarray]) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, info, complete = self.advance(action)
        if not complete:
            return obs, 0.0, False, False, info
        return self.finish(self.problem.evaluate(to_batch([self._choices], self.space_context)), 0)

    # --- batched evaluation -------------------------------------------------------------
    def advance(self, action: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, Any], bool]:
        """Apply one construction step; returns (obs, info, design complete)."""
        if self._choices.stage >= self.n_steps:
            raise RuntimeError("the episode is over: call reset()")
        self._choices, projected = apply(self._choices, np.asarray(action["discrete"]),
                                         np.asarray(action["continuous"]), self.space_context,
                                         self._mask)
        self._projected += int(projected)
        complete = self._choices.stage == self.n_steps
        return self._obs(), self._info(), complete

    @property
    def choices(self) -> Choices:
        """The choices made so far in this episode."""
        return self._choices

    def current_design(self) -> Design:
        """The finished design of this episode (placement included)."""
        return decode(self._choices, self.space_context, name=f"ep{self._episode}")

    def finish(self, result: PPAResult, i: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """The terminal transition given design ``i`` of a PPA ``result`` of this design."""
        t = terms(result, i, self.reward_context)
        info = self._info()
        info.update(choices=self._choices.to_dict(),
                    ppa=summarize(result, i), objectives={k: t[k] for k in ("perf", "power", "area")},
                    terms=t, feasible=bool(result.feasible[i]), violations=int(result.violations[i]),
                    admissible=admissible(result, i, self.reward_context), projected=self._projected)
        return self._obs(), t["total"], True, False, info

    # --- observation --------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        stage = np.zeros(self.n_steps + 1)
        stage[self._choices.stage] = 1.0
        x = np.concatenate([stage, self._static, encode(self._choices, self.space_context)])
        return np.clip(x, -_OBS_BOUND, _OBS_BOUND).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        done = self._choices.stage >= self.n_steps
        self._mask = None if done else masks(self._choices, self.space_context)
        return {
            "action_mask": tuple(np.ones(len(v), bool) for v in DISCRETE.values()) if done
            else self._mask,
            "continuous_mask": np.zeros(len(CONTINUOUS), bool) if done else continuous_mask(self._choices),
            "stage": "done" if done else STAGES[self._choices.stage].name,
            "step": self._choices.stage,
            "episode": self._episode,
        }


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="explorer.env:AsicDesignEnv")
