"""Networks of the SAC + MoE agent: the MoE gate, the hybrid-action actor, the branching critic."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GateOutput",
    "MoEGate",
    "PolicyOutput",
    "Actor",
    "SoftQNetwork",
    "DiscreteLayout",
    "load_balance_loss",
    "tanh_gaussian_log_prob",
]

_LOG2 = math.log(2.0)


class GateOutput(NamedTuple):
    """Gate result for a batch of states."""

    weights: torch.Tensor
    """(B, K) routing weights: the softmax restricted to the top-k experts and
    renormalised to sum to 1; exactly 0 for the experts not selected."""
    probs: torch.Tensor
    """(B, K) dense softmax g_k(s) of paper Eq. 54, the quantity balanced by Eq. 55."""


class MoEGate(nn.Module):
    """Linear softmax gate g_k(s) = softmax(U s)_k (paper Eq. 54) with top-k routing.

    Parameters
    ----------
    in_features:
        Length of the gate input (the whole observation, so node and workload features
        take part in the routing).
    n_experts:
        K.
    top_k:
        Experts kept per state; the kept weights are renormalised (Shazeer et al., 2017,
        keep-top-k then softmax, which is the same as renormalising the kept softmax).
    """

    def __init__(self, in_features: int, n_experts: int, top_k: int) -> None:
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k must be between 1 and {n_experts}, not {top_k}")
        self.n_experts = n_experts
        self.top_k = top_k
        self.linear = nn.Linear(in_features, n_experts)

    def forward(self, x: torch.Tensor) -> GateOutput:
        logits = self.linear(x)
        probs = torch.softmax(logits, dim=-1)
        if self.top_k == self.n_experts:
            return GateOutput(weights=probs, probs=probs)
        # Keep the k largest logits; softmax over them equals the renormalised dense softmax.
        kept = torch.topk(logits, self.top_k, dim=-1).indices
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, kept, True)
        weights = torch.softmax(logits.masked_fill(~keep, float("-inf")), dim=-1)
        return GateOutput(weights=weights, probs=probs)


def load_balance_loss(probs: torch.Tensor, coef: float) -> torch.Tensor:
    """L = λ·K·Σ_k ḡ_k², ḡ_k the batch mean of g_k (paper Eq. 55); equals λ when balanced."""
    n_experts = probs.shape[-1]
    mean_gate = probs.reshape(-1, n_experts).mean(dim=0)
    return coef * n_experts * (mean_gate ** 2).sum()


class DiscreteLayout(nn.Module):
    """Flat layout of MultiDiscrete values: dimension i owns entries [o_i, o_i + nvec[i]).

    Networks emit one flat vector of F = Σ nvec entries, and masks are flat too (the
    concatenation of ``info["action_mask"]``). Per-dimension reductions are small dense
    matrix products with the (F, D) one-hot ``member`` matrix, which keeps padding and
    scatter/index backward passes out of the update (they dominated its time).
    """

    def __init__(self, nvec: Sequence[int]) -> None:
        super().__init__()
        self.nvec = tuple(int(n) for n in nvec)
        if not self.nvec or min(self.nvec) < 1:
            raise ValueError(f"nvec must be a non-empty sequence of positive sizes, not {nvec!r}")
        self.n_dims = len(self.nvec)
        self.n_flat = sum(self.nvec)
        self.n_max = max(self.nvec)
        segment = torch.repeat_interleave(torch.arange(self.n_dims), torch.as_tensor(self.nvec))
        offsets = torch.cumsum(torch.as_tensor([0, *self.nvec[:-1]]), 0)
        v = torch.arange(self.n_max)[None, :]
        exists = v < torch.as_tensor(self.nvec)[:, None]
        self.register_buffer("segment", segment, persistent=False)
        self.register_buffer("offsets", offsets, persistent=False)
        self.register_buffer("member", F.one_hot(segment, self.n_dims).float(), persistent=False)
        # (D, N_max) view of the flat vector (padding points at the dim's first entry).
        self.register_buffer("pad_index", offsets[:, None] + torch.where(exists, v, 0),
                             persistent=False)
        self.register_buffer("pad_exists", exists, persistent=False)

    def segment_sum(self, x: torch.Tensor) -> torch.Tensor:
        """(B, F) -> (B, D): sum of each dimension's entries."""
        return x @ self.member.to(x.dtype)

    def broadcast(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D) -> (B, F): each dimension's value on each of its entries."""
        return x @ self.member.T.to(x.dtype)

    def log_softmax(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Per-dimension log-softmax of (B, F) ``logits``; forbidden entries exactly −inf.

        Every dimension must allow at least one value. A forbidden value then has
        probability exactly 0 (exp(−inf)), so it is never sampled and adds nothing to
        entropies or expectations.
        """
        x = logits.masked_fill(~mask, float("-inf"))
        # Per-dimension max for stability (no gradient needed: it cancels).
        peak = torch.full((x.shape[0], self.n_dims), float("-inf"), dtype=x.dtype,
                          device=x.device)
        peak = peak.scatter_reduce(1, self.segment.expand(x.shape[0], -1), x.detach(), "amax")
        z = x - self.broadcast(peak)
        log_norm = torch.log(self.segment_sum(torch.exp(z)))
        return z - self.broadcast(log_norm)

    def padded(self, flat: torch.Tensor, fill: float) -> torch.Tensor:
        """(B, F) -> (B, D, N_max) with ``fill`` in the padding (sampling, inspection)."""
        return flat[:, self.pad_index].masked_fill(~self.pad_exists, fill)

    def neighbourhood(self, mask: torch.Tensor, action: torch.Tensor, sigma: float,
                      min_options: int) -> torch.Tensor:
        """(B, F) target distribution per dimension spread around the chosen values.

        For a dimension with at least ``min_options`` options (treated as ordinal), weight
        exp(−(r_v − r_a)²/(2σ²)) on each allowed value v, r the rank among the allowed
        values (the index a black-box gene would use), normalised per dimension; other
        dimensions, and σ = 0, give the one-hot of the chosen value.
        """
        maskf = mask.to(torch.float32)
        # Rank of each value among its dimension's allowed values (exclusive count).
        before = torch.cumsum(maskf, dim=1) - maskf
        rank = before - self.broadcast(self.taken(torch.cumsum(maskf, dim=1) - maskf,
                                                  torch.zeros_like(action)))
        chosen = self.broadcast(self.taken(rank, action))
        onehot = torch.zeros_like(maskf).scatter_(1, self.offsets + action, 1.0)
        if sigma <= 0:
            return onehot
        kernel = torch.exp(-0.5 * ((rank - chosen) / sigma) ** 2) * maskf
        ordinal = (torch.as_tensor(self.nvec) >= min_options)[self.segment]
        kernel = torch.where(ordinal, kernel, onehot)
        return kernel / self.broadcast(self.segment_sum(kernel))

    def taken(self, flat: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """(B, F), (B, D) int -> (B, D): the entry of each dimension's chosen value."""
        return flat.gather(1, self.offsets + action)


def tanh_gaussian_log_prob(pre_tanh: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor,
                           active: torch.Tensor | None = None) -> torch.Tensor:
    """log density of a = tanh(u), u ~ N(mean, exp(log_std)²), summed over the last axis.

    ``active`` (bool, same shape) restricts the sum to the dimensions the environment
    reads: the others are ignored by it, so they are left out of the policy's density.

    Uses log(1 − tanh²u) = 2(log 2 − u − softplus(−2u)), exact and stable for large |u|
    (the cleanrl form log(1 − a² + 1e-6) saturates there).
    """
    z = (pre_tanh - mean) * torch.exp(-log_std)
    normal = -0.5 * z ** 2 - log_std - 0.5 * math.log(2.0 * math.pi)
    jacobian = 2.0 * (_LOG2 - pre_tanh - F.softplus(-2.0 * pre_tanh))
    log_density = normal - jacobian
    if active is not None:
        log_density = log_density * active
    return log_density.sum(dim=-1)


class PolicyOutput(NamedTuple):
    """The actor's distribution parameters for a batch of states."""

    log_probs: torch.Tensor
    """(B, F) per-dimension categorical log-probabilities in the flat layout of
    :class:`DiscreteLayout` (−inf where masked)."""
    mean: torch.Tensor
    """(B, C) mean of the pre-tanh Gaussian."""
    log_std: torch.Tensor
    """(B, C) log standard deviation of the pre-tanh Gaussian."""
    gate: GateOutput
    """Gate weights and dense gate probabilities."""


class Actor(nn.Module):
    """Mixture-of-Experts hybrid actor: shared trunk, gate over K expert heads.

    Each expert k maps the trunk features to per-dimension categorical logits z_k and
    Gaussian parameters (μ_k, log σ_k). The experts are pooled *log-linearly* (a weighted
    geometric mean of the expert policies, renormalised):

    * categorical: π(v) ∝ Π_k π_k(v)^{w_k}, i.e. logits Σ_k w_k z_k;
    * Gaussian: Π_k N(μ_k, σ_k²)^{w_k} ∝ N(μ, σ²) with precision 1/σ² = Σ_k w_k/σ_k² and
      μ = σ² Σ_k w_k μ_k/σ_k².

    The pooled policy is again a product of categoricals and a diagonal tanh-Gaussian, so
    its log-probability, the exact discrete entropy and reparameterised sampling are
    closed-form, and the gate receives gradients through them. With top-1 routing it is
    exactly the selected expert's policy, the same as paper Eq. 54's arithmetic mixture.

    Parameters
    ----------
    obs_dim:
        Observation length.
    nvec:
        Values per discrete dimension (``MultiDiscrete.nvec``); may be empty, then one
        dimension of one value stands in.
    n_continuous:
        Number of continuous action dimensions; may be 0.
    hidden_units, n_experts, top_k, expert_hidden_units, log_std_min, log_std_max:
        See :class:`~explorer.agents.sac_moe.config.SacMoeConfig`.
    gate_index:
        Observation entries the gate reads (e.g. the stage, mode, workload and node
        features); None: the whole observation.
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], n_continuous: int, *,
                 hidden_units: int, n_experts: int, top_k: int, expert_hidden_units: int,
                 log_std_min: float, log_std_max: float,
                 gate_index: Sequence[int] | None = None) -> None:
        super().__init__()
        # Without discrete dimensions one dimension of one value stands in (log-prob 0).
        self.nvec = tuple(int(n) for n in nvec) or (1,)
        self.n_discrete = len(self.nvec)
        self.n_max = max(self.nvec)
        self.n_continuous = n_continuous
        self.log_std_min = log_std_min
        self.log_std_max = log_std_max
        self.layout = DiscreteLayout(self.nvec)
        self.n_flat = self.layout.n_flat
        self.trunk = nn.Sequential(
            nn.Linear(obs_dim, hidden_units), nn.GELU(),
            nn.Linear(hidden_units, hidden_units), nn.GELU(),
        )
        index = list(range(obs_dim)) if gate_index is None else [int(i) for i in gate_index]
        if not index or min(index) < 0 or max(index) >= obs_dim:
            raise ValueError(f"gate_index must pick entries of the {obs_dim}-long observation")
        self.register_buffer("gate_index", torch.as_tensor(index, dtype=torch.long),
                             persistent=False)
        self.gate = MoEGate(len(index), n_experts, top_k)
        n_out = self.n_flat + 2 * n_continuous
        # Expert weights stacked on a leading K axis so all experts run in two einsums.
        self.w1 = nn.Parameter(torch.empty(n_experts, hidden_units, expert_hidden_units))
        self.b1 = nn.Parameter(torch.empty(n_experts, expert_hidden_units))
        self.w2 = nn.Parameter(torch.empty(n_experts, expert_hidden_units, n_out))
        self.b2 = nn.Parameter(torch.empty(n_experts, n_out))
        for w, b in ((self.w1, self.b1), (self.w2, self.b2)):
            bound = 1.0 / math.sqrt(w.shape[1])  # nn.Linear's default init, per expert
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def expert_outputs(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, K, n_out) raw outputs of every expert."""
        h = self.trunk(obs)
        e = F.gelu(torch.einsum("bh,khe->bke", h, self.w1) + self.b1)
        return torch.einsum("bke,keo->bko", e, self.w2) + self.b2

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> PolicyOutput:
        """Pooled policy for ``obs`` (B, obs_dim) under the flat ``mask`` (B, F) bool."""
        out = self.expert_outputs(obs)
        gate = self.gate(obs[:, self.gate_index])
        w = gate.weights.unsqueeze(-1)  # (B, K, 1)
        n_d = self.n_flat
        logits = (w * out[..., :n_d]).sum(dim=1)
        log_probs = self.layout.log_softmax(logits, mask)
        c = self.n_continuous
        raw_mean = out[..., n_d:n_d + c]
        raw_log_std = torch.tanh(out[..., n_d + c:])
        # tanh-rescaled log-std (cleanrl / SpinningUp) keeps the bounds differentiable.
        log_std_k = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (
            raw_log_std + 1.0)
        precision_k = torch.exp(-2.0 * log_std_k)
        precision = (w * precision_k).sum(dim=1)
        mean = (w * precision_k * raw_mean).sum(dim=1) / precision
        log_std = -0.5 * torch.log(precision)
        return PolicyOutput(log_probs=log_probs, mean=mean, log_std=log_std, gate=gate)


class SoftQNetwork(nn.Module):
    """Branching soft Q-network Q_i(s, a_c, v) for every discrete dimension i and value v.

    Following Hybrid SAC (Delalleau et al., 2019) the continuous action is an input and
    the discrete action indexes the output; with several discrete dimensions each
    dimension gets its own output branch (action branching, Tavakoli et al., 2018), so the
    output is (B, F) in the flat layout of :class:`DiscreteLayout`. Without discrete
    dimensions there is one branch of one value.
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], n_continuous: int, *,
                 hidden_units: int) -> None:
        super().__init__()
        self.nvec = tuple(int(n) for n in nvec) or (1,)
        self.net = nn.Sequential(
            nn.Linear(obs_dim + n_continuous, hidden_units), nn.GELU(),
            nn.Linear(hidden_units, hidden_units), nn.GELU(),
            nn.Linear(hidden_units, sum(self.nvec)),
        )

    def forward(self, obs: torch.Tensor, action_continuous: torch.Tensor,
                active: torch.Tensor | None = None) -> torch.Tensor:
        """(B, F) Q-values; continuous dims not ``active`` are fed as 0."""
        if active is not None:
            action_continuous = action_continuous * active
        return self.net(torch.cat([obs, action_continuous], dim=-1))
