"""SAC + MoE agent: gate, pooled policy, masks, buffers, determinism, resume, learning."""

from __future__ import annotations

import io
import math
import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from explorer.agents import make_agent
from explorer.agents.base import EnvSpaces
from explorer.agents.sac_moe import SacMoeAgent, SacMoeConfig
from explorer.agents.sac_moe.anchor import (
    AnchorPlan,
    anchored_step,
    free_genes,
    restrict_mask,
)
from explorer.agents.sac_moe.buffer import EliteBuffer, ReplayBuffer, Transition, _SumTree
from explorer.agents.sac_moe.networks import (
    Actor,
    DiscreteLayout,
    GateOutput,
    MoEGate,
    PolicyOutput,
    load_balance_loss,
    tanh_gaussian_log_prob,
)

# Small networks so the whole file runs in seconds on one thread.
TINY = dict(hidden_units=32, expert_hidden_units=16, batch_size=32, learning_starts=60,
            updates_per_step=1.0, buffer_size=5_000)


class ToyDesignEnv(gym.Env):
    """Three-step hybrid-action fixture with the design env's action contract.

    Step 0 picks discrete dim 0; step 1 picks dim 1 (values above d0 + 1 masked) and
    continuous dim 0; step 2 picks dim 2 and continuous dim 1. Dims a step ignores allow
    only option 0. The terminal reward is 1 minus a scaled squared distance to
    ``OPTIMUM``, so the best design (reward exactly 1) is known.
    """

    NVEC = (4, 5, 3)
    N_CONTINUOUS = 2
    OPTIMUM = ((2, 3, 1), (0.5, -0.3))

    def __init__(self) -> None:
        self.action_space = spaces.Dict({
            "discrete": spaces.MultiDiscrete(self.NVEC),
            "continuous": spaces.Box(-1.0, 1.0, (self.N_CONTINUOUS,), np.float32)})
        self.observation_space = spaces.Box(-1.0, 1.0, (10,), np.float32)
        self.agent_spaces = EnvSpaces(
            self.observation_space, self.action_space, 3,
            {"stage": slice(0, 3), "design": slice(3, 8), "node": slice(8, 10)},
            ("d0", "d1", "d2"), ("c0", "c1"), ("s0", "s1", "s2"))
        self._episode = -1
        self._step = 0
        self._d = [0, 0, 0]
        self._c = [0.0, 0.0]

    def _obs(self) -> np.ndarray:
        o = np.zeros(10, np.float32)
        if self._step < 3:
            o[self._step] = 1.0
        o[3:6] = np.array(self._d, np.float32) / (np.array(self.NVEC) - 1)
        o[6:8] = self._c
        o[8:10] = (0.5, -0.5)
        return o

    def _info(self) -> dict:
        masks = []
        for j, n in enumerate(self.NVEC):
            m = np.zeros(n, bool)
            if j == self._step:
                m[:] = True
                if j == 1:
                    m[self._d[0] + 2:] = False
            else:
                m[0] = True
            masks.append(m)
        return {"action_mask": tuple(masks),
                "continuous_mask": np.array([self._step == 1, self._step == 2]),
                "episode": self._episode, "step": self._step}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._episode += 1
        self._step = 0
        self._d, self._c = [0, 0, 0], [0.0, 0.0]
        return self._obs(), self._info()

    def step(self, action):
        j = self._step
        self._d[j] = int(action["discrete"][j])
        if j >= 1:
            self._c[j - 1] = float(action["continuous"][j - 1])
        self._step += 1
        done = self._step == 3
        reward = 0.0
        if done:
            (o0, o1, o2), (oc0, oc1) = self.OPTIMUM
            d0, d1, d2 = self._d
            reward = 1.0 - ((d0 - o0) ** 2 / 9 + (d1 - o1) ** 2 / 16 + (d2 - o2) ** 2 / 4
                            + (self._c[0] - oc0) ** 2 + (self._c[1] - oc1) ** 2) / 2
        return self._obs(), reward, done, False, self._info()


def run_episodes(agent, env, n):
    """Drive ``agent`` through ``n`` episodes as explorer.run does; (returns, actions)."""
    returns, actions = [], []
    for _ in range(n):
        obs, info = env.reset()
        done, total = False, 0.0
        while not done:
            action = agent.act(obs, info)
            actions.append((action["discrete"].copy(), action["continuous"].copy()))
            next_obs, reward, terminated, truncated, next_info = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated, truncated, next_info)
            total += reward
            obs, info, done = next_obs, next_info, terminated or truncated
        agent.end_episode(total, info)
        returns.append(total)
    return np.array(returns), actions


def weights_of(agent):
    learner = agent.learner
    return {f"{name}.{k}": v.detach().clone() for name in ("actor", "qf1", "qf2", "qf1_target")
            for k, v in getattr(learner, name).state_dict().items()}


# -- configuration -----------------------------------------------------------------------------

def test_config_messages():
    with pytest.raises(ValueError, match=r"^top_k must be at most n_experts \(4\), not 5$"):
        SacMoeConfig(top_k=5)
    with pytest.raises(TypeError, match=r"^batch_size must be an integer, not 2\.5$"):
        SacMoeConfig(batch_size=2.5)
    with pytest.raises(ValueError, match=r"^tau must be in \(0\.0, 1\.0\], not 0\.0$"):
        SacMoeConfig(tau=0.0)
    with pytest.raises(ValueError, match=r"^buffer_size must be at least batch_size \(256\), not 10$"):
        SacMoeConfig(buffer_size=10)


def test_unknown_hyperparameter_is_a_type_error():
    with pytest.raises(TypeError, match=r"^unknown sac-moe hyperparameter\(s\): warp$"):
        SacMoeAgent(ToyDesignEnv(), 0, warp=9)


def test_registry_builds_the_agent():
    agent = make_agent("sac-moe", ToyDesignEnv(), 3, budget=10, n_experts=2, top_k=1)
    assert isinstance(agent, SacMoeAgent)
    assert agent.hyperparameters()["n_experts"] == 2
    assert agent.hyperparameters()["gate_features"] == ["stage", "mode", "workload", "node"]


# -- the gate ----------------------------------------------------------------------------------

def test_gate_weights_sum_to_one_dense_and_top_k():
    torch.manual_seed(0)
    x = torch.randn(64, 7)
    for top_k in (1, 2, 4):
        out = MoEGate(7, 4, top_k)(x)
        torch.testing.assert_close(out.weights.sum(-1), torch.ones(64))
        torch.testing.assert_close(out.probs.sum(-1), torch.ones(64))
        assert ((out.weights > 0).sum(-1) == top_k).all()


def test_gate_top_k_selects_the_largest_gates():
    gate = MoEGate(3, 4, top_k=2)
    with torch.no_grad():
        gate.linear.weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]))
        gate.linear.bias.zero_()
    x = torch.tensor([[3.0, 1.0, 2.0], [-1.0, 0.5, -2.0]])
    with torch.no_grad():
        out = gate(x)
    # Logits are (3, 1, 2, 0) and (-1, 0.5, -2, 0): top-2 = {0, 2} and {1, 3}.
    assert (out.weights[0, [1, 3]] == 0).all() and (out.weights[1, [0, 2]] == 0).all()
    e = np.exp([3.0, 2.0])
    np.testing.assert_allclose(out.weights[0, [0, 2]].numpy(), e / e.sum(), rtol=1e-6)
    dense = np.exp([3.0, 1.0, 2.0, 0.0])
    np.testing.assert_allclose(out.probs[0].numpy(), dense / dense.sum(), rtol=1e-6)


def test_load_balance_loss_hand_computed():
    probs = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.5, 0.2, 0.2], [0.4, 0.4, 0.1, 0.1]])
    # Batch means: (1.2, 1.0, 0.4, 0.4) / 3; Σ ḡ² = (1.44 + 1 + 0.16 + 0.16) / 9 = 2.76 / 9.
    expected = 0.05 * 4 * 2.76 / 9
    assert load_balance_loss(probs, 0.05).item() == pytest.approx(expected, rel=1e-6)
    # Perfectly balanced gates give exactly λ (the minimum of λ·K·Σ ḡ² on the simplex).
    assert load_balance_loss(torch.full((5, 4), 0.25), 0.01).item() == pytest.approx(0.01)


# -- the pooled policy ---------------------------------------------------------------------------

def _hand_actor(top_k=3):
    actor = Actor(5, (3, 2), 2, hidden_units=8, n_experts=3, top_k=top_k,
                  expert_hidden_units=4, log_std_min=-5.0, log_std_max=2.0)
    return actor


def test_log_linear_pool_matches_numpy():
    torch.manual_seed(1)
    actor = _hand_actor()
    obs = torch.randn(6, 5)
    mask = torch.ones(6, 5, dtype=torch.bool)  # flat: dim 0 = entries 0..2, dim 1 = 3..4
    mask[:, 2] = False
    pol = actor(obs, mask)
    out = actor.expert_outputs(obs).detach().double().numpy()
    w = actor.gate(obs).weights.detach().double().numpy()
    # Categorical: π ∝ Π_k softmax(z_k)^{w_k} over the allowed values.
    z0 = out[:, :, 0:3]  # expert outputs: the 5 flat logits, then μ (2), then log σ (2)
    logp = z0 - np.log(np.exp(z0[..., :2]).sum(-1, keepdims=True))  # masked value 2 excluded
    geo = np.exp((w[..., None] * logp[..., :2]).sum(1))
    geo /= geo.sum(-1, keepdims=True)
    np.testing.assert_allclose(pol.log_probs[:, :2].exp().detach().numpy(), geo, rtol=1e-5)
    assert (pol.log_probs[:, 2] == float("-inf")).all()
    # Gaussian: precision-weighted pooling of the experts' (μ_k, σ_k).
    mu_k = out[:, :, 5:7]
    log_std_k = -5.0 + 3.5 * (np.tanh(out[:, :, 7:9]) + 1.0)
    tau_k = np.exp(-2 * log_std_k)
    tau = (w[..., None] * tau_k).sum(1)
    np.testing.assert_allclose(pol.mean.detach().numpy(),
                               (w[..., None] * tau_k * mu_k).sum(1) / tau, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pol.log_std.detach().numpy(), -0.5 * np.log(tau), rtol=1e-5,
                               atol=1e-6)


def test_top1_pool_is_the_selected_experts_policy():
    torch.manual_seed(2)
    actor = _hand_actor(top_k=1)
    obs = torch.randn(4, 5)
    pol = actor(obs, torch.ones(4, 5, dtype=torch.bool))
    k = actor.gate(obs).weights.argmax(-1)
    out = actor.expert_outputs(obs)[torch.arange(4), k]
    torch.testing.assert_close(pol.log_probs[:, 0:3], torch.log_softmax(out[:, 0:3], -1))
    torch.testing.assert_close(pol.log_probs[:, 3:5], torch.log_softmax(out[:, 3:5], -1))
    torch.testing.assert_close(pol.mean, out[:, 5:7])


def test_tanh_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(3)
    mean = torch.randn(50, 3, dtype=torch.float64)
    log_std = torch.rand(50, 3, dtype=torch.float64) - 1.0
    u = mean + torch.exp(log_std) * 3.0 * torch.randn(50, 3, dtype=torch.float64)
    ref = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, torch.exp(log_std)),
        [torch.distributions.TanhTransform()])
    expected = ref.log_prob(torch.tanh(u)).sum(-1)
    got = tanh_gaussian_log_prob(u, mean, log_std)
    ok = torch.tanh(u).abs().max(-1).values < 1 - 1e-9  # the reference saturates at |a| = 1
    torch.testing.assert_close(got[ok], expected[ok], rtol=1e-7, atol=1e-7)
    active = torch.tensor([True, False, True])
    torch.testing.assert_close(tanh_gaussian_log_prob(u, mean, log_std, active),
                               got - tanh_gaussian_log_prob(u[:, 1:2], mean[:, 1:2],
                                                            log_std[:, 1:2]))


def test_layout_log_softmax_matches_numpy_per_dimension():
    layout = DiscreteLayout((3, 1, 4))
    torch.manual_seed(4)
    logits = 30.0 * torch.randn(7, 8, dtype=torch.float64)  # large: stability matters
    mask = torch.rand(7, 8) < 0.7
    mask[:, [0, 3, 4]] = True  # every dimension keeps one allowed value
    got = layout.log_softmax(logits, mask)
    x, m = logits.numpy(), mask.numpy()
    for lo, hi in ((0, 3), (3, 4), (4, 8)):
        seg = np.where(m[:, lo:hi], x[:, lo:hi], -np.inf)
        ref = seg - np.log(np.exp(seg - seg.max(1, keepdims=True)).sum(1, keepdims=True)) \
            - seg.max(1, keepdims=True)
        np.testing.assert_allclose(got[:, lo:hi].numpy(), ref, rtol=1e-12, atol=1e-12)
    assert (got.exp()[~mask] == 0).all()
    torch.testing.assert_close(layout.segment_sum(got.exp()), torch.ones(7, 3, dtype=torch.float64))


def test_neighbourhood_target_hand_computed():
    layout = DiscreteLayout((3, 10))
    allowed = [True, False, True, True, True, False, True, True, True, True]  # dim 1
    mask = torch.tensor([[True] * 3 + allowed])
    target = layout.neighbourhood(mask, torch.tensor([[1, 4]]), sigma=1.0, min_options=8)
    # Dim 0 (3 options, nominal): one-hot. Dim 1: allowed values 0,2,3,4,6,7,8,9 have
    # ranks 0..7; value 4 has rank 3; weights exp(-(r - 3)^2 / 2) over the allowed values.
    np.testing.assert_array_equal(target[0, :3].numpy(), [0, 1, 0])
    ranks = np.array([0, -1, 1, 2, 3, -1, 4, 5, 6, 7])
    w = np.where(np.array(allowed), np.exp(-0.5 * (ranks - 3.0) ** 2), 0.0)
    np.testing.assert_allclose(target[0, 3:].numpy(), w / w.sum(), rtol=1e-6)
    exact = layout.neighbourhood(mask, torch.tensor([[2, 4]]), sigma=0.0, min_options=8)
    np.testing.assert_array_equal(exact[0].numpy(), np.eye(13)[2] + np.eye(13)[7])


def test_masked_values_have_zero_probability_and_are_never_sampled():
    agent = SacMoeAgent(ToyDesignEnv(), 7, **dict(TINY, updates_per_step=0.25))
    learner = agent.learner
    layout = DiscreteLayout((5, 5, 5))
    learner.layout = layout  # sample from a hand-made policy over three 5-way dims
    mask = torch.tensor([[True, False, True, False, False,
                          False, False, False, True, True,
                          True, True, True, False, False]])
    log_probs = layout.log_softmax(torch.randn(1, 15), mask)
    assert (log_probs.exp()[~mask] == 0).all()
    # Sampled frequencies follow the masked probabilities (Gumbel-max), masked never drawn.
    n = 20_000
    pol = PolicyOutput(log_probs.expand(n, -1), torch.zeros(n, 2), torch.zeros(n, 2),
                       GateOutput(torch.ones(1, 1), torch.ones(1, 1)))
    action_d, _, _ = learner._sample(pol)
    counts = torch.cat([torch.bincount(action_d[:, j], minlength=5) for j in range(3)])
    assert (counts[~mask[0]] == 0).all()
    p = log_probs.exp()[0]
    band = 5 * torch.sqrt(n * p * (1 - p)) + 1  # 5-sigma binomial band
    assert ((counts - n * p).abs() <= band).all()
    # Through the agent on the toy env: masked options never come out.
    agent = SacMoeAgent(ToyDesignEnv(), 7, **dict(TINY, updates_per_step=0.25))
    _, actions = run_episodes(agent, ToyDesignEnv(), 80)
    for step, (d, _) in enumerate(actions):
        s = step % 3
        assert all(d[j] == 0 for j in range(3) if j != s)
        if s == 1:
            assert d[1] <= actions[step - 1][0][0] + 1


def test_entropy_terms_ignore_masked_values_without_nan_gradients():
    actor = _hand_actor()
    obs = torch.randn(8, 5)
    mask = torch.ones(8, 5, dtype=torch.bool)
    mask[:, 1:3] = False  # dim 0 keeps one allowed value: its entropy is exactly 0
    pol = actor(obs, mask)
    probs = pol.log_probs.exp()
    safe = pol.log_probs.masked_fill(~mask, 0.0)
    entropy = -actor.layout.segment_sum(probs * safe)
    assert (entropy[:, 0] == 0).all()
    entropy.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in actor.parameters() if p.grad is not None)


# -- replay ------------------------------------------------------------------------------------

def _transition(reward, terminated, value=0.0):
    z = np.full(2, value, np.float32)
    return Transition(obs=z, mask=np.ones(2, bool), action_discrete=np.zeros(1, np.int64),
                      action_continuous=np.zeros(1, np.float32),
                      continuous_mask=np.ones(1, bool), reward=reward, next_obs=z,
                      next_mask=np.ones(2, bool), next_continuous_mask=np.ones(1, bool),
                      terminated=terminated)


def test_episode_returns_and_circular_storage():
    buf = ReplayBuffer(5, 2, 1, 2, 1, gamma=0.5)
    arrays = buf.add_episode([_transition(0.0, False), _transition(1.0, False),
                              _transition(4.0, True)])
    # G_2 = 4, G_1 = 1 + 0.5·4 = 3, G_0 = 0 + 0.5·3 = 1.5.
    np.testing.assert_allclose(arrays["mc_return"], [1.5, 3.0, 4.0])
    buf.add_episode([_transition(2.0, False, 7.0), _transition(1.0, True, 7.0)])
    buf.add_episode([_transition(5.0, True, 9.0)])
    assert len(buf) == 5 and buf.pos == 1
    assert buf.data["obs"][0, 0] == 9.0 and buf.data["reward"][0] == 5.0


def test_sum_tree_sampling_is_proportional():
    tree = _SumTree(6)
    priorities = np.array([1.0, 0.0, 3.0, 2.0, 0.5, 1.5])
    tree.set(np.arange(6), priorities)
    assert tree.total() == pytest.approx(8.0)
    rng = np.random.default_rng(0)
    picks = tree.find(rng.random(40_000) * tree.total())
    freq = np.bincount(picks, minlength=6) / 40_000
    np.testing.assert_allclose(freq, priorities / 8.0, atol=0.01)
    tree.set(np.array([2, 2]), np.array([0.0, 0.0]))
    assert tree.total() == pytest.approx(5.0)


def test_prioritised_weights_follow_schaul():
    buf = ReplayBuffer(4, 2, 1, 2, 1, gamma=1.0, prioritized=True, per_alpha=1.0,
                       per_beta_start=0.5, per_beta_increment=0.0)
    buf.add_episode([_transition(0.0, False), _transition(0.0, False),
                     _transition(0.0, False), _transition(1.0, True)])
    buf.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]) - 1e-6)
    batch = buf.sample(64, np.random.default_rng(1))
    p = (np.arange(4) + 1.0) / 10.0
    w = (4 * p) ** -0.5
    np.testing.assert_allclose(batch.weights, (w / w[batch.indices].max())[batch.indices],
                               rtol=1e-5)


def test_elite_buffer_keeps_the_best_episodes():
    elite = EliteBuffer(2)
    for r in (0.1, 0.5, 0.3, 0.9, 0.2):
        elite.add(r, {"reward": np.array([r], np.float32)})
    assert [e[0] for e in elite.episodes] == [0.9, 0.5]
    assert elite.threshold() == 0.5
    # The same design (same key) is kept once, even with a return good enough to enter.
    keyed = EliteBuffer(3)
    assert keyed.add(0.4, {"reward": np.array([0.4])}, "a")
    assert not keyed.add(0.4, {"reward": np.array([0.4])}, "a")
    assert keyed.add(0.4, {"reward": np.array([0.4])}, "b")
    assert [e[3] for e in keyed.episodes] == ["a", "b"]


# -- determinism and resume --------------------------------------------------------------------

def test_same_seed_same_actions_and_weights():
    a = SacMoeAgent(ToyDesignEnv(), 11, **TINY)
    b = SacMoeAgent(ToyDesignEnv(), 11, **TINY)
    ra, acts_a = run_episodes(a, ToyDesignEnv(), 40)
    rb, acts_b = run_episodes(b, ToyDesignEnv(), 40)
    assert a.learner.n_updates > 20
    np.testing.assert_array_equal(ra, rb)
    for (da, ca), (db, cb) in zip(acts_a, acts_b, strict=True):
        np.testing.assert_array_equal(da, db)
        np.testing.assert_array_equal(ca, cb)
    wa, wb = weights_of(a), weights_of(b)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    c = SacMoeAgent(ToyDesignEnv(), 12, **TINY)
    _, acts_c = run_episodes(c, ToyDesignEnv(), 40)
    assert any(not np.array_equal(x[1], y[1]) for x, y in zip(acts_a, acts_c, strict=True))


@pytest.mark.parametrize(("prioritized", "anchor"), [(False, 0.0), (True, 0.0), (False, 0.7)])
def test_state_dict_round_trip_resumes_identically(prioritized, anchor):
    kw = dict(TINY, prioritized=prioritized, anchor_prob_start=anchor, anchor_prob_end=anchor)
    env = ToyDesignEnv()
    original = SacMoeAgent(env, 5, **kw)
    run_episodes(original, env, 30)  # past warm-up: updates have happened
    assert original.learner.n_updates > 0
    blob = io.BytesIO()
    torch.save(original.state_dict(), blob)  # the checkpoint writer pickles; torch.save too
    pickle.dumps(original.state_dict())
    _, acts_original = run_episodes(original, env, 15)

    resumed = SacMoeAgent(ToyDesignEnv(), 99, **kw)  # a different seed: the state must win
    blob.seek(0)
    resumed.load_state_dict(torch.load(blob, weights_only=False))
    env2 = ToyDesignEnv()
    env2._episode = 29
    _, acts_resumed = run_episodes(resumed, env2, 15)
    for (da, ca), (db, cb) in zip(acts_original, acts_resumed, strict=True):
        np.testing.assert_array_equal(da, db)
        np.testing.assert_array_equal(ca, cb)
    wa, wb = weights_of(original), weights_of(resumed)
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    assert original.learner.alpha_d == resumed.learner.alpha_d
    assert original.anchored_episodes == resumed.anchored_episodes
    if anchor:
        assert resumed.anchored_episodes > 0


def test_load_rejects_other_hyperparameters():
    state = SacMoeAgent(ToyDesignEnv(), 0, **TINY).state_dict()
    other = SacMoeAgent(ToyDesignEnv(), 0, **dict(TINY, tau=0.5))
    with pytest.raises(ValueError, match=r"^checkpoint was written with different sac-moe "
                                         r"hyperparameters$"):
        other.load_state_dict(state)


# -- learning ----------------------------------------------------------------------------------

def test_learning_improves_the_return_on_the_toy_env():
    agent = SacMoeAgent(ToyDesignEnv(), 0, **dict(TINY, learning_starts=90))
    returns, _ = run_episodes(agent, ToyDesignEnv(), 160)
    random_phase, learned = returns[:30].mean(), returns[-30:].mean()
    # Uniform random play averages about 0.2 here; a learned policy is far above it.
    assert learned > random_phase + 0.3, (random_phase, learned)
    metrics = agent.last_metrics
    assert len(metrics["moe/expert_load"]) == 4
    assert math.isclose(sum(metrics["moe/expert_load"]), 1.0, rel_tol=1e-5)
    assert all(np.isfinite(v) for k, v in metrics.items() if k != "moe/expert_load")


def test_entropy_schedule_and_reward_transform():
    agent = SacMoeAgent(ToyDesignEnv(), 0, budget=10, **dict(
        TINY, target_entropy_discrete_ratio=0.4, target_entropy_discrete_ratio_end=0.1,
        target_entropy_continuous_end=-3.0))
    assert agent.entropy_ratio() == pytest.approx(0.4)
    assert agent.entropy_continuous() == pytest.approx(-1.0)
    returns, _ = run_episodes(agent, ToyDesignEnv(), 5)
    assert agent.entropy_ratio() == pytest.approx(0.25)
    assert agent.entropy_continuous() == pytest.approx(-2.0)
    # Terminal rewards are stored as symlog(r) = sign(r)·ln(1 + |r|); others stay 0.
    stored = agent.buffer.data["reward"][:15].reshape(5, 3)
    np.testing.assert_allclose(stored[:, 2], np.sign(returns) * np.log1p(np.abs(returns)),
                               rtol=1e-6)
    assert (stored[:, :2] == 0).all()
    assert SacMoeAgent(ToyDesignEnv(), 0, **TINY).entropy_ratio() == 0.5  # no schedule


# -- the real design environment -----------------------------------------------------------------

def test_smoke_on_the_design_env_smolvlm_28nm_low_power(tmp_path):
    from explorer.env import AsicDesignEnv
    from explorer.run import RunConfig, run_search
    from explorer.storage import Storage, sqlite_url

    small = dict(hidden_units=32, expert_hidden_units=16, batch_size=32, learning_starts=48,
                 updates_per_step=0.25)
    env = AsicDesignEnv(workload="smolvlm-256m", node="28nm", mode="low-power")
    agent = SacMoeAgent(env, 0, budget=8, **small)
    assert agent.learner.actor.gate.linear.in_features == sum(
        len(range(env.observation_space.shape[0])[env.agent_spaces.obs_slices[k]])
        for k in ("stage", "mode", "workload", "node"))
    obs, info = env.reset(seed=0)
    for episode in range(8):
        if episode:
            obs, info = env.reset()
        done, total = False, 0.0
        while not done:
            action = agent.act(obs, info)
            assert env.action_space.contains(action)
            next_obs, reward, terminated, truncated, next_info = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated, truncated, next_info)
            total += reward
            obs, info, done = next_obs, next_info, terminated or truncated
        agent.end_episode(total, info)
        assert info["projected"] == 0  # the agent never chose a masked option
        assert np.isfinite(total)
    assert agent.learner.n_updates > 0

    # Through the search loop, with storage and checkpoints.
    storage = Storage(sqlite_url(tmp_path / "results.sqlite"))
    config = RunConfig(workload="smolvlm-256m", node="28nm", mode="low-power",
                       agent="sac-moe", budget=6, seed=1, hyperparams=small,
                       checkpoint_every=3)
    result = run_search(config, storage, "smoke", tmp_path / "checkpoint.pkl")
    rows = storage.evaluations(result.run.id)
    assert [r["episode"] for r in rows] == list(range(6))
    assert all(np.isfinite(r["reward"]) for r in rows)
    assert (tmp_path / "checkpoint.pkl").exists()
    storage.close()


# -- elite-anchored episodes -------------------------------------------------------------------

def test_anchor_probability_ramps_linearly_over_the_budget():
    agent = SacMoeAgent(ToyDesignEnv(), 0, budget=8, **dict(
        TINY, anchor_prob_start=0.2, anchor_prob_end=0.6))
    assert agent.anchor_prob() == pytest.approx(0.2)
    run_episodes(agent, ToyDesignEnv(), 2)
    assert agent.anchor_prob() == pytest.approx(0.3)
    run_episodes(agent, ToyDesignEnv(), 6)
    assert agent.anchor_prob() == pytest.approx(0.6)
    run_episodes(agent, ToyDesignEnv(), 4)
    assert agent.anchor_prob() == pytest.approx(0.6)  # past the budget: stays at the end
    no_budget = SacMoeAgent(ToyDesignEnv(), 0, **dict(TINY, anchor_prob_start=0.2,
                                                      anchor_prob_end=0.6))
    assert no_budget.anchor_prob() == 0.2
    # Anchoring waits for the warm-up: none of the first 20 episodes (60 steps) is anchored.
    warm = SacMoeAgent(ToyDesignEnv(), 0, **dict(TINY, anchor_prob_start=1.0,
                                                 anchor_prob_end=1.0))
    run_episodes(warm, ToyDesignEnv(), 20)
    assert warm.anchored_episodes == 0
    run_episodes(warm, ToyDesignEnv(), 5)
    assert warm.anchored_episodes == 5


def test_free_genes_and_restricted_mask_hand_computed():
    nvec = (4, 10, 3)
    mask = np.zeros((2, 17), bool)
    mask[0, [0, 1, 2, 3]] = True         # step 0: dim 0 free (4 values)
    mask[0, [4, 14]] = True              # dims 1, 2 fixed at 0
    mask[1, [0]] = True
    mask[1, 4 + np.array([0, 2, 3, 4, 5, 6, 9])] = True   # step 1: dim 1, 7 legal values
    mask[1, [14, 15]] = True             # dim 2: 2 legal values
    cmask = np.array([[False, False], [True, False]])
    assert free_genes(mask, cmask, nvec) == [(0, "d", 0), (1, "d", 1), (1, "d", 2),
                                             (1, "c", 0)]
    plan = AnchorPlan(np.array([[2, 0, 0], [0, 4, 1]]), np.zeros((2, 2), np.float32), mask,
                      cmask, frozenset({(1, "d", 1), (1, "d", 2)}), 0)
    # dim 1 without a window: every legal value except the elite's 4
    out = restrict_mask(plan, 1, mask[1], nvec, 0, 8)
    np.testing.assert_array_equal(np.flatnonzero(out[4:14]), [0, 2, 3, 5, 6, 9])
    np.testing.assert_array_equal(np.flatnonzero(out[14:17]), [0])   # 3 values: not ordinal
    np.testing.assert_array_equal(out[:4], mask[1, :4])
    # window 1 (ranks among legal values 0,2,3,[4],5,6,9): 3 and 5 remain
    out = restrict_mask(plan, 1, mask[1], nvec, 1, 8)
    np.testing.assert_array_equal(np.flatnonzero(out[4:14]), [3, 5])
    # a step without mutated genes keeps the mask
    np.testing.assert_array_equal(restrict_mask(plan, 0, mask[0], nvec, 1, 8), mask[0])


def test_anchored_episode_replays_the_elite_except_where_the_policy_acts():
    env = ToyDesignEnv()
    agent = SacMoeAgent(env, 3, budget=100, **dict(
        TINY, anchor_prob_start=1.0, anchor_prob_end=1.0, anchor_top=1, anchor_max_genes=1))
    run_episodes(agent, env, 25)        # warm-up (20 episodes) then anchored ones
    assert agent.anchored_episodes == 5
    changed = 0
    for _ in range(12):
        best = agent.elite.episodes[0][2]
        obs, info = env.reset()
        done, total, step, plan = False, 0.0, 0, None
        while not done:
            action = agent.act(obs, info)
            plan = plan or agent._plan
            assert plan is not None and plan.elite_rank == 0
            mask = np.concatenate(info["action_mask"])
            genes = free_genes(best["mask"][step:step + 1], best["continuous_mask"][step:step + 1],
                               ToyDesignEnv.NVEC)
            for _, kind, j in genes:
                mine = action["discrete"][j] if kind == "d" else action["continuous"][j]
                elite = best["action_discrete"][step, j] if kind == "d" else \
                    best["action_continuous"][step, j]
                if (step, kind, j) in plan.mutated:
                    assert mine != elite            # the policy moved this gene
                    changed += 1
                elif kind == "d":
                    # replayed; projected only if an earlier change made it illegal
                    offset = sum(ToyDesignEnv.NVEC[:j])
                    if mask[offset + elite]:
                        assert mine == elite
                else:
                    assert mine == elite
            next_obs, reward, terminated, truncated, next_info = env.step(action)
            agent.observe(obs, action, reward, next_obs, terminated, truncated, next_info)
            total += reward
            obs, info, done, step = next_obs, next_info, terminated, step + 1
        agent.end_episode(total, info)
        assert len(plan.mutated) == 1
    assert changed == 12


def test_anchored_step_without_mutation_rebuilds_the_elite():
    env = ToyDesignEnv()
    agent = SacMoeAgent(env, 4, **TINY)
    returns, actions = run_episodes(agent, env, 30)
    best = agent.elite.episodes[0][2]
    plan = AnchorPlan(best["action_discrete"], best["action_continuous"], best["mask"],
                      best["continuous_mask"], frozenset(), 0)
    obs, info = env.reset()
    total, step, done = 0.0, 0, False
    rng = np.random.default_rng(0)
    while not done:
        mask = np.concatenate(info["action_mask"])
        # a random "policy" proposal: everything the elite chose must be overwritten
        proposal_d = np.array([rng.integers(n) for n in ToyDesignEnv.NVEC])
        proposal_c = rng.uniform(-1, 1, 2).astype(np.float32)
        d, c = anchored_step(plan, step, mask, info["continuous_mask"], proposal_d, proposal_c,
                             ToyDesignEnv.NVEC)
        obs, reward, done, _, info = env.step({"discrete": d, "continuous": c})
        total += reward
        step += 1
    # the stored elite return is symlog(r) / 1 (terminal reward only)
    assert math.copysign(math.log1p(abs(total)), total) == pytest.approx(
        agent.elite.episodes[0][0], abs=1e-6)
    assert total == pytest.approx(returns.max(), abs=1e-6)
