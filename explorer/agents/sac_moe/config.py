"""Hyper-parameters of the SAC + Mixture-of-Experts agent (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["SacMoeConfig"]


def _check_int(name: str, value: object, lo: int, hi: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < lo or (hi is not None and value > hi):
        bound = f"at least {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be {bound}, not {value}")


def _check_float(name: str, value: object, lo: float, hi: float, *,
                 lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if not (lo < value if lo_open else lo <= value) or not value <= hi:
        left = "(" if lo_open else "["
        raise ValueError(f"{name} must be in {left}{lo}, {hi}], not {value}")


@dataclass(frozen=True)
class SacMoeConfig:
    """Hyper-parameters of :class:`~explorer.agents.sac_moe.agent.SacMoeAgent`.

    Defaults marked *paper* come from the seed paper's Tab. 5/6
    (``reference/seed_paper.md`` §9.2); the others are this project's choices, tuned on
    the design-space environment with a 2,000-evaluation budget (``docs/sac_moe.md``
    records what was tried).

    Raises
    ------
    TypeError
        A field has the wrong kind of value.
    ValueError
        A field is out of range.
    """

    # -- networks ---------------------------------------------------------------------
    hidden_units: int = 128
    """Width of the two hidden layers of the actor trunk and of each critic (the paper uses
    256; 128 keeps an update near 10 ms on one CPU thread)."""
    n_experts: int = 4
    """K, the number of expert heads behind the MoE gate."""
    top_k: int = 4
    """Experts kept per state by the gate (the rest get weight 0, the kept weights are
    renormalised); ``top_k == n_experts`` is a dense gate."""
    expert_hidden_units: int = 64
    """Hidden width of each expert head (one GELU layer on top of the shared trunk)."""
    load_balance_coef: float = 0.01
    """λ of the load-balancing loss L = λ·K·Σ_k ḡ_k² (paper Eq. 55, value unspecified
    there); 0.01 is the auxiliary-loss weight of the Switch Transformer (Fedus et al.,
    2021, §2.2)."""
    gate_features: tuple[str, ...] = ("stage", "mode", "workload", "node")
    """Named observation parts (``EnvSpaces.obs_slices``) the gate reads, so experts can
    specialise by construction stage, mode, workload and node; parts the environment does
    not name are skipped, and the whole observation is used if none is found."""
    log_std_min: float = -5.0
    """Lower clamp of the pre-tanh log standard deviation (cleanrl's value)."""
    log_std_max: float = 2.0
    """Upper clamp of the pre-tanh log standard deviation (paper and cleanrl)."""

    # -- SAC --------------------------------------------------------------------------
    gamma: float = 1.0
    """Discount. One episode builds one design and only its last step is rewarded, so
    discounting would only rescale the terminal reward per stage; the paper's 0.99 belongs
    to its one-step-per-design MDP."""
    tau: float = 0.02
    """Polyak coefficient of the target critics (paper 0.005, raised for the small update
    budget)."""
    actor_lr: float = 3e-4
    """Adam learning rate of the actor and the gate (paper)."""
    critic_lr: float = 1e-3
    """Adam learning rate of the twin critics (paper 3e-4)."""
    alpha_lr: float = 3e-4
    """Adam learning rate of both log-temperatures (paper)."""
    alpha_init: float = 0.2
    """Initial temperature of both action parts (paper α₀)."""
    log_alpha_min: float = -10.0
    """Lower clamp of log α (paper)."""
    log_alpha_max: float = 10.0
    """Upper clamp of log α (paper)."""
    target_entropy_continuous: float = -1.0
    """Target entropy per continuous dimension; the SAC default −dim(A) (the paper's −30
    for 30 dimensions) is −1 per dimension."""
    target_entropy_continuous_end: float | None = -2.0
    """If set (and the budget is known), the per-dimension continuous target moves linearly
    to this value over the budget's episodes (−2: pre-tanh σ ≈ 0.03 at the end, the
    continuous counterpart of the discrete schedule below)."""
    target_entropy_discrete_ratio: float = 0.5
    """Target entropy of the discrete part as a fraction of its maximum, Σ_i log(#allowed_i)
    under the state's mask (SAC-Discrete uses 0.98; lower exploits sooner)."""
    target_entropy_discrete_ratio_end: float | None = 0.1
    """If set (and the run's budget is known), the ratio moves linearly from
    ``target_entropy_discrete_ratio`` to this value over the budget's episodes: explore
    first, exploit at the end, like an annealing schedule. With a fixed 0.5 the policy's
    mean reward plateaued while its best design stalled below the GA's (``docs/sac_moe.md``
    §5); a search with a fixed budget should end concentrated on its best region."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip of actor and critic updates (paper: "clip [−1, 1]")."""

    # -- data ---------------------------------------------------------------------------
    batch_size: int = 256
    """Mini-batch size (paper)."""
    buffer_size: int = 100_000
    """Replay capacity in transitions (paper)."""
    learning_starts: int = 1_000
    """Environment steps of uniformly random (mask-respecting) actions before the policy
    acts and updates start (paper warm-up: 1,000 steps)."""
    updates_per_step: float = 0.125
    """Gradient updates per environment step once learning has started (fractions
    accumulate: 0.125 is 1.5 updates per 12-step episode). One update costs ~30 ms of CPU
    at batch 256 (one thread), so 0.125 keeps a 2,000-evaluation run near 2.5 CPU-minutes;
    0.5 took ~6 (``docs/sac_moe.md`` §5)."""
    mc_return_mix: float = 0.5
    """β in the critic target y = (1−β)·y_TD + β·G, G the episode's Monte-Carlo return
    (filled in when the episode ends); 0 is plain SAC."""
    reward_transform: str = "symlog"
    """Monotone transform of each reward before it is stored: ``"symlog"``
    (sign(r)·ln(1 + |r|), DreamerV3, Hafner et al. 2023) compresses the design reward's
    heavy tail of penalties (down to about −90) so the critic resolves the good designs;
    ``"none"`` keeps it. The optimum and the ranking of designs are unchanged."""
    normalize_rewards: bool = True
    """Divide rewards by the running standard deviation of episode returns (Welford)."""
    prioritized: bool = False
    """Prioritised replay (Schaul et al., 2016) as in the paper; uniform when False."""
    per_alpha: float = 0.6
    """PER priority exponent, p_i = (|δ_i| + 1e-6)^α (paper)."""
    per_beta_start: float = 0.4
    """Initial importance-sampling exponent β (paper)."""
    per_beta_increment: float = 0.001
    """Increase of β per sampled batch, capped at 1 (paper: +0.001)."""
    elite_episodes: int = 32
    """Size of the elite buffer: the episodes with the highest returns seen so far."""
    sil_coef: float = 0.1
    """Weight of the self-imitation term (Oh et al., 2018): −log π(a|s)·max(G − V(s), 0)
    on elite transitions; 0 disables it."""
    sil_ordinal_sigma: float = 0.0
    """Width (in ranks among the allowed options) of the Gaussian kernel that spreads the
    self-imitation target of an ordinal dimension over the elite value's neighbours;
    0 imitates the exact value."""
    sil_ordinal_min_options: int = 8
    """Dimensions with at least this many options count as ordinal for the kernel (in the
    design space every dimension with 8 or more options is an ordered quantity)."""
    sil_batch_size: int = 64
    """Elite transitions per self-imitation mini-batch."""
    epsilon_start: float = 0.0
    """Probability of a uniformly random action after warm-up (paper ε-greedy: 0.5)."""
    epsilon_end: float = 0.0
    """Final ε, reached linearly at ``epsilon_decay_steps`` (paper: 0.1)."""
    epsilon_decay_steps: int = 10_000
    """Environment steps over which ε decays linearly."""

    # -- elite-anchored episodes (Go-Explore's "first return, then explore") ------------
    anchor_prob_start: float = 0.4
    """Probability that an episode after warm-up is *anchored*: it replays an elite
    episode's actions and lets the policy redraw only a few of its genes
    (``explorer/agents/sac_moe/anchor.py``; Ecoffet et al., 2021, Nature 590:580). The
    probability moves linearly from this value to ``anchor_prob_end`` over the budget's
    episodes (it stays here when the budget is unknown)."""
    anchor_prob_end: float = 1.0
    """Anchoring probability at the end of the budget: a search with a fixed budget
    should end refining its best designs, as the GA and SA do. The default ramp
    0.4 -> 1.0 had the best rank sum of six A/B settings (``docs/sac_moe.md`` §5.4)."""
    anchor_top: int = 4
    """The anchored elite is drawn uniformly from this many best episodes of the elite
    buffer (1: always the best design found so far)."""
    anchor_max_genes: int = 2
    """An anchored episode redraws between 1 and this many (uniformly) of the elite's
    genes, a gene being one discrete or continuous dimension the elite chose at one
    construction step; the GA's mutation changes about one gene per child."""
    anchor_window: int = 0
    """If positive, a redrawn ordinal gene (at least ``sil_ordinal_min_options`` values)
    is drawn by the policy among the legal values within this many ranks of the elite's
    value (a trust region); 0 lets the policy choose any other legal value."""

    # -- runtime ------------------------------------------------------------------------
    torch_threads: int = 1
    """torch intra-op threads; 1 makes updates bit-reproducible and timings stable."""

    def __post_init__(self) -> None:
        _check_int("hidden_units", self.hidden_units, 1)
        _check_int("n_experts", self.n_experts, 1)
        _check_int("top_k", self.top_k, 1)
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k must be at most n_experts ({self.n_experts}), "
                             f"not {self.top_k}")
        _check_int("expert_hidden_units", self.expert_hidden_units, 1)
        if not isinstance(self.gate_features, tuple) or not all(
                isinstance(f, str) for f in self.gate_features):
            raise TypeError(f"gate_features must be a tuple of str, not {self.gate_features!r}")
        _check_float("load_balance_coef", self.load_balance_coef, 0.0, 1e3)
        _check_float("log_std_min", self.log_std_min, -20.0, 2.0)
        _check_float("log_std_max", self.log_std_max, -20.0, 5.0)
        if self.log_std_min >= self.log_std_max:
            raise ValueError(f"log_std_min must be below log_std_max ({self.log_std_max}), "
                             f"not {self.log_std_min}")
        _check_float("gamma", self.gamma, 0.0, 1.0)
        _check_float("tau", self.tau, 0.0, 1.0, lo_open=True)
        for name in ("actor_lr", "critic_lr", "alpha_lr"):
            _check_float(name, getattr(self, name), 0.0, 1.0, lo_open=True)
        _check_float("alpha_init", self.alpha_init, 0.0, 1e3, lo_open=True)
        _check_float("log_alpha_min", self.log_alpha_min, -50.0, 50.0)
        _check_float("log_alpha_max", self.log_alpha_max, -50.0, 50.0)
        if self.log_alpha_min >= self.log_alpha_max:
            raise ValueError(f"log_alpha_min must be below log_alpha_max "
                             f"({self.log_alpha_max}), not {self.log_alpha_min}")
        _check_float("target_entropy_continuous", self.target_entropy_continuous, -20.0, 5.0)
        _check_float("target_entropy_discrete_ratio", self.target_entropy_discrete_ratio,
                     0.0, 1.0)
        if self.target_entropy_continuous_end is not None:
            _check_float("target_entropy_continuous_end", self.target_entropy_continuous_end,
                         -20.0, 5.0)
        if self.target_entropy_discrete_ratio_end is not None:
            _check_float("target_entropy_discrete_ratio_end",
                         self.target_entropy_discrete_ratio_end, 0.0, 1.0)
        _check_float("max_grad_norm", self.max_grad_norm, 0.0, 1e6, lo_open=True)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("buffer_size", self.buffer_size, 1)
        if self.buffer_size < self.batch_size:
            raise ValueError(f"buffer_size must be at least batch_size ({self.batch_size}), "
                             f"not {self.buffer_size}")
        _check_int("learning_starts", self.learning_starts, 0)
        _check_float("updates_per_step", self.updates_per_step, 0.0, 64.0)
        _check_float("mc_return_mix", self.mc_return_mix, 0.0, 1.0)
        if self.reward_transform not in ("none", "symlog"):
            raise ValueError(f"reward_transform must be 'none' or 'symlog', not "
                             f"{self.reward_transform!r}")
        if not isinstance(self.normalize_rewards, bool):
            raise TypeError(f"normalize_rewards must be a bool, not {self.normalize_rewards!r}")
        if not isinstance(self.prioritized, bool):
            raise TypeError(f"prioritized must be a bool, not {self.prioritized!r}")
        _check_float("per_alpha", self.per_alpha, 0.0, 1.0)
        _check_float("per_beta_start", self.per_beta_start, 0.0, 1.0)
        _check_float("per_beta_increment", self.per_beta_increment, 0.0, 1.0)
        _check_int("elite_episodes", self.elite_episodes, 0)
        _check_float("sil_coef", self.sil_coef, 0.0, 1e3)
        _check_float("sil_ordinal_sigma", self.sil_ordinal_sigma, 0.0, 1e3)
        _check_int("sil_ordinal_min_options", self.sil_ordinal_min_options, 2)
        _check_int("sil_batch_size", self.sil_batch_size, 1)
        _check_float("epsilon_start", self.epsilon_start, 0.0, 1.0)
        _check_float("epsilon_end", self.epsilon_end, 0.0, 1.0)
        _check_int("epsilon_decay_steps", self.epsilon_decay_steps, 1)
        _check_float("anchor_prob_start", self.anchor_prob_start, 0.0, 1.0)
        _check_float("anchor_prob_end", self.anchor_prob_end, 0.0, 1.0)
        _check_int("anchor_top", self.anchor_top, 1)
        _check_int("anchor_max_genes", self.anchor_max_genes, 1)
        _check_int("anchor_window", self.anchor_window, 0)
        _check_int("torch_threads", self.torch_threads, 1, 64)

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """Names of all hyper-parameters, in declaration order."""
        return tuple(f.name for f in fields(cls))
