"""Hybrid-action SAC with a Mixture-of-Experts actor: networks, optimisers and one update step.

Reads top to bottom like cleanrl's ``sac_continuous_action.py``: the learner owns the
actor, the twin critics and their targets, the two temperatures and the optimisers;
:meth:`SacMoeLearner.update` is one gradient step, in ``# ALGO LOGIC`` sections. The
formulation (``docs/sac_moe.md``) is Hybrid SAC (Delalleau et al., 2019) with one critic
branch per discrete dimension (Tavakoli et al., 2018) and SAC-Discrete's exact expectation
over each categorical (Christodoulou, 2019).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from .buffer import ReplayBatch
from .config import SacMoeConfig
from .networks import (
    Actor,
    PolicyOutput,
    SoftQNetwork,
    load_balance_loss,
    tanh_gaussian_log_prob,
)

__all__ = ["SacMoeLearner"]

_ATANH_LIMIT = 1.0 - 1e-6


class SacMoeLearner:
    """Networks, temperatures and optimisers of the agent, plus the SAC update.

    Parameters
    ----------
    obs_dim:
        Observation length.
    nvec:
        Values per discrete dimension (may be empty).
    n_continuous:
        Continuous action dimensions (may be 0).
    config:
        Hyper-parameters.
    seed:
        Seeds the network initialisation and the sampling generator. The global torch RNG
        is left untouched (initialisation runs under ``torch.random.fork_rng``).
    gate_index:
        Observation entries the MoE gate reads (None: all).
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], n_continuous: int,
                 config: SacMoeConfig, seed: int,
                 gate_index: Sequence[int] | None = None) -> None:
        cfg = config
        self.config = cfg
        self.nvec = tuple(int(n) for n in nvec) or (1,)
        self.n_continuous = int(n_continuous)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.actor = Actor(obs_dim, self.nvec, self.n_continuous,
                               hidden_units=cfg.hidden_units, n_experts=cfg.n_experts,
                               top_k=cfg.top_k, expert_hidden_units=cfg.expert_hidden_units,
                               log_std_min=cfg.log_std_min, log_std_max=cfg.log_std_max,
                               gate_index=gate_index)
            self.qf1 = SoftQNetwork(obs_dim, self.nvec, self.n_continuous,
                                    hidden_units=cfg.hidden_units)
            self.qf2 = SoftQNetwork(obs_dim, self.nvec, self.n_continuous,
                                    hidden_units=cfg.hidden_units)
        self.qf1_target = copy.deepcopy(self.qf1).requires_grad_(False)
        self.qf2_target = copy.deepcopy(self.qf2).requires_grad_(False)
        self.layout = self.actor.layout
        self.generator = torch.Generator().manual_seed(seed)
        log_alpha0 = float(np.log(cfg.alpha_init))
        self.log_alpha_d = torch.tensor(log_alpha0, requires_grad=True)
        self.log_alpha_c = torch.tensor(log_alpha0, requires_grad=True)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr)
        self.q_optimizer = torch.optim.Adam(
            [*self.qf1.parameters(), *self.qf2.parameters()], lr=cfg.critic_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha_d, self.log_alpha_c],
                                                lr=cfg.alpha_lr)
        self.n_updates = 0

    # -- sampling ---------------------------------------------------------------------------

    def _sample(self, pol: PolicyOutput, active: torch.Tensor | None = None, *,
                deterministic: bool = False, discrete: bool = True,
                ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """(discrete action (B, D), continuous action (B, C), log π_c (B,)), reparameterised.

        ``log π_c`` counts only the ``active`` continuous dims (all when None). Discrete
        values are drawn by Gumbel-max on the masked log-probabilities: a value at −inf can
        never win, so masked values are never sampled. The updates take exact
        expectations over the discrete part and pass ``discrete=False`` (None returned).
        """
        action_d = None
        if deterministic:
            action_d = self.layout.padded(pol.log_probs, float("-inf")).argmax(dim=-1)
            pre_tanh = pol.mean
        else:
            if discrete:
                log_probs = self.layout.padded(pol.log_probs, float("-inf"))
                u = torch.rand(log_probs.shape, generator=self.generator)
                gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))  # u < 1: −log u > 0
                action_d = (log_probs + gumbel).argmax(dim=-1)
            eps = torch.randn(pol.mean.shape, generator=self.generator)
            pre_tanh = pol.mean + torch.exp(pol.log_std) * eps
        log_pi_c = tanh_gaussian_log_prob(pre_tanh, pol.mean, pol.log_std, active)
        return action_d, torch.tanh(pre_tanh), log_pi_c

    @torch.no_grad()
    def act(self, obs: np.ndarray, mask: np.ndarray, *, deterministic: bool = False,
            ) -> tuple[np.ndarray, np.ndarray]:
        """Policy action for one observation: (discrete (D,) int64, continuous (C,) float32).

        ``mask`` is the flat (F,) bool mask of allowed discrete values.
        """
        pol = self.actor(torch.as_tensor(obs, dtype=torch.float32)[None],
                         torch.as_tensor(mask)[None])
        action_d, action_c, _ = self._sample(pol, deterministic=deterministic)
        assert action_d is not None
        return action_d[0].numpy().astype(np.int64), action_c[0].numpy().astype(np.float32)

    @torch.no_grad()
    def random_action(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uniform over the allowed discrete values and over [−1, 1]^C."""
        allowed = self.layout.padded(torch.as_tensor(mask)[None], False)[0]
        u = torch.rand(allowed.shape, generator=self.generator)
        action_d = u.masked_fill(~allowed, -1.0).argmax(dim=-1)
        action_c = 2.0 * torch.rand(self.n_continuous, generator=self.generator) - 1.0
        return action_d.numpy().astype(np.int64), action_c.numpy().astype(np.float32)

    # -- helpers ----------------------------------------------------------------------------

    def _policy_terms(self, pol: PolicyOutput, mask: torch.Tensor,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """(probabilities, log-probabilities with 0 at forbidden values), both (B, F).

        Zeroing the −inf entries before any product keeps 0·(−inf) = NaN out of both the
        values and the gradients.
        """
        return torch.exp(pol.log_probs), pol.log_probs.masked_fill(~mask, 0.0)

    def _expected_q(self, q: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """E_{a_i~π_i} Q_i averaged over the branches i: (B, F) -> (B,)."""
        return self.layout.segment_sum(probs * q).mean(dim=-1)

    def target_entropy_discrete(self, mask: torch.Tensor, ratio: float) -> torch.Tensor:
        """ratio · Σ_i log(#allowed values of dimension i), per state: (B,)."""
        allowed = self.layout.segment_sum(mask.float()).clamp_min(1.0)
        return ratio * torch.log(allowed).sum(-1)

    @property
    def alpha_d(self) -> float:
        return float(self.log_alpha_d.detach().exp())

    @property
    def alpha_c(self) -> float:
        return float(self.log_alpha_c.detach().exp())

    # -- the update -------------------------------------------------------------------------

    def update(self, batch: ReplayBatch, reward_scale: float,
               elite: ReplayBatch | None = None, entropy_ratio: float | None = None,
               entropy_continuous: float | None = None,
               ) -> tuple[dict[str, Any], np.ndarray]:
        """One gradient step on critics, actor (+gate), temperatures and targets.

        ``reward_scale`` divides rewards and returns; ``entropy_ratio`` and
        ``entropy_continuous`` override the configured discrete target-entropy ratio and
        per-dimension continuous target (schedules). Returns the metrics and the
        per-sample absolute TD errors (for prioritised replay).
        """
        cfg = self.config
        t = _to_tensors(batch)
        alpha_d, alpha_c = self.log_alpha_d.exp().detach(), self.log_alpha_c.exp().detach()
        reward = t["reward"] / reward_scale
        mc_return = t["mc_return"] / reward_scale

        # ALGO LOGIC: critic target. Soft value of s' with the exact expectation over each
        # categorical and one reparameterised continuous sample, min over the twin targets.
        with torch.no_grad():
            next_pol = self.actor(t["next_obs"], t["next_mask"])
            next_active = t["next_continuous_mask"]
            _, next_action_c, next_log_pi_c = self._sample(next_pol, next_active, discrete=False)
            next_probs, next_log_probs = self._policy_terms(next_pol, t["next_mask"])
            next_q = torch.min(self.qf1_target(t["next_obs"], next_action_c, next_active),
                               self.qf2_target(t["next_obs"], next_action_c, next_active))
            next_entropy_d = -(next_probs * next_log_probs).sum(dim=-1)
            next_value = (self._expected_q(next_q, next_probs) + alpha_d * next_entropy_d
                          - alpha_c * next_log_pi_c)
            td_target = reward + cfg.gamma * (1.0 - t["terminated"]) * next_value
            # Mixing in the Monte-Carlo return speeds up credit assignment of the terminal
            # reward over the construction steps (n-step/MC targets, e.g. Hessel et al. 2018).
            target = (1.0 - cfg.mc_return_mix) * td_target + cfg.mc_return_mix * mc_return

        # ALGO LOGIC: critic loss. Every branch's Q at the value taken regresses to the target.
        action_d, active = t["action_discrete"], t["continuous_mask"]
        q1 = self.layout.taken(self.qf1(t["obs"], t["action_continuous"], active), action_d)
        q2 = self.layout.taken(self.qf2(t["obs"], t["action_continuous"], active), action_d)
        err1, err2 = q1 - target[:, None], q2 - target[:, None]
        qf_loss = (t["weights"] * ((err1 ** 2).mean(-1) + (err2 ** 2).mean(-1))).mean()
        self.q_optimizer.zero_grad()
        qf_loss.backward()
        nn.utils.clip_grad_norm_([*self.qf1.parameters(), *self.qf2.parameters()],
                                 cfg.max_grad_norm)
        self.q_optimizer.step()
        td_abs = 0.5 * (err1.abs().mean(-1) + err2.abs().mean(-1)).detach().numpy()

        # ALGO LOGIC: actor loss. Discrete heads: exact E_π[α_d log π − Q] per dimension
        # (SAC-Discrete); continuous head: reparameterised α_c log π_c − E_{a_d}[Q].
        # The critics are frozen here: only the actor's parameters need gradients.
        self.qf1.requires_grad_(False)
        self.qf2.requires_grad_(False)
        pol = self.actor(t["obs"], t["mask"])
        _, action_c, log_pi_c = self._sample(pol, active, discrete=False)
        probs, log_probs = self._policy_terms(pol, t["mask"])
        q_pi = torch.min(self.qf1(t["obs"], action_c, active),
                         self.qf2(t["obs"], action_c, active))
        loss_d = (probs * (alpha_d * log_probs - q_pi.detach())).sum(dim=-1)
        loss_c = alpha_c * log_pi_c - self._expected_q(q_pi, probs.detach())
        balance = load_balance_loss(pol.gate.probs, cfg.load_balance_coef)
        actor_loss = (loss_d + loss_c).mean() + balance

        # ALGO LOGIC: self-imitation on elite episodes (Oh et al., 2018): raise log π of
        # elite actions where their return beats the critic's value estimate. On ordinal
        # dimensions the discrete target is spread over the elite value's neighbours, so
        # the policy explores around the elites (a GA mutation's job).
        sil_loss = torch.zeros(())
        if elite is not None and cfg.sil_coef > 0:
            e = _to_tensors(elite)
            elite_pol = self.actor(e["obs"], e["mask"])
            e_active = e["continuous_mask"]
            with torch.no_grad():
                _, e_action_c, _ = self._sample(elite_pol, e_active, discrete=False)
                e_probs = torch.exp(elite_pol.log_probs)
                e_q = torch.min(self.qf1(e["obs"], e_action_c, e_active),
                                self.qf2(e["obs"], e_action_c, e_active))
                advantage = (e["mc_return"] / reward_scale
                             - self._expected_q(e_q, e_probs)).clamp_min(0.0)
            target = self.layout.neighbourhood(e["mask"], e["action_discrete"],
                                               cfg.sil_ordinal_sigma, cfg.sil_ordinal_min_options)
            safe_log_probs = elite_pol.log_probs.masked_fill(~e["mask"], 0.0)
            log_pi_d = (target * safe_log_probs).sum(-1)
            pre_tanh = torch.atanh(e["action_continuous"].clamp(-_ATANH_LIMIT, _ATANH_LIMIT))
            log_pi = log_pi_d + tanh_gaussian_log_prob(pre_tanh, elite_pol.mean,
                                                       elite_pol.log_std, e_active)
            sil_loss = -cfg.sil_coef * (advantage * log_pi).mean()
            actor_loss = actor_loss + sil_loss

        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.max_grad_norm)
        self.actor_optimizer.step()
        self.qf1.requires_grad_(True)
        self.qf2.requires_grad_(True)

        # ALGO LOGIC: temperatures, one per action part, each towards its own target entropy.
        entropy_d = -(probs * log_probs).sum(dim=-1).detach()
        if entropy_ratio is None:
            entropy_ratio = cfg.target_entropy_discrete_ratio
        target_d = self.target_entropy_discrete(t["mask"], entropy_ratio)
        if entropy_continuous is None:
            entropy_continuous = cfg.target_entropy_continuous
        target_c = entropy_continuous * active.sum(dim=-1)
        alpha_loss = (self.log_alpha_d * (entropy_d - target_d)).mean() - (
            self.log_alpha_c * (log_pi_c.detach() + target_c)).mean()
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        self.alpha_optimizer.step()
        with torch.no_grad():
            self.log_alpha_d.clamp_(cfg.log_alpha_min, cfg.log_alpha_max)
            self.log_alpha_c.clamp_(cfg.log_alpha_min, cfg.log_alpha_max)

        # ALGO LOGIC: Polyak averaging of the target critics.
        with torch.no_grad():
            for net, target_net in ((self.qf1, self.qf1_target), (self.qf2, self.qf2_target)):
                for p, tp in zip(net.parameters(), target_net.parameters(), strict=True):
                    tp.lerp_(p, cfg.tau)
        self.n_updates += 1

        metrics = {
            "losses/qf_loss": qf_loss.item(),
            "losses/qf1_values": q1.detach().mean().item(),
            "losses/actor_loss": actor_loss.item(),
            "losses/alpha_loss": alpha_loss.item(),
            "losses/load_balance": balance.item(),
            "losses/self_imitation": sil_loss.item(),
            "losses/alpha_discrete": self.alpha_d,
            "losses/alpha_continuous": self.alpha_c,
            "charts/entropy_discrete": float(entropy_d.mean()),
            "charts/log_pi_continuous": log_pi_c.detach().mean().item(),
            "moe/expert_load": pol.gate.weights.mean(dim=0).detach().numpy().tolist(),
        }
        return metrics, td_abs

    # -- checkpointing ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "qf1": self.qf1.state_dict(), "qf2": self.qf2.state_dict(),
            "qf1_target": self.qf1_target.state_dict(),
            "qf2_target": self.qf2_target.state_dict(),
            "log_alpha_d": self.log_alpha_d.detach().clone(),
            "log_alpha_c": self.log_alpha_c.detach().clone(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "q_optimizer": self.q_optimizer.state_dict(),
            "alpha_optimizer": self.alpha_optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "n_updates": self.n_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.qf1.load_state_dict(state["qf1"])
        self.qf2.load_state_dict(state["qf2"])
        self.qf1_target.load_state_dict(state["qf1_target"])
        self.qf2_target.load_state_dict(state["qf2_target"])
        with torch.no_grad():
            self.log_alpha_d.copy_(state["log_alpha_d"])
            self.log_alpha_c.copy_(state["log_alpha_c"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.q_optimizer.load_state_dict(state["q_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        self.generator.set_state(state["generator"])
        self.n_updates = int(state["n_updates"])


def _to_tensors(batch: ReplayBatch) -> dict[str, torch.Tensor]:
    return {name: torch.as_tensor(value) for name, value in batch._asdict().items()}
