"""The agent interface every search algorithm implements, and the agent registry.

One evaluation = one episode = one PPA evaluation. The search loop
(:func:`explorer.run.run_search`) drives every agent, learned or not, through the same
``llm2silicon/AsicDesign-v0`` environment and the same calls:

.. code-block:: python

    agent = make_agent("ga", env, seed=0, budget=2000)
    obs, info = env.reset(seed=0)
    done, total = False, 0.0
    while not done:
        action = agent.act(obs, info)       # {"discrete": int64[nd], "continuous": float32[nc]}
        next_obs, reward, terminated, truncated, next_info = env.step(action)
        agent.observe(obs, action, reward, next_obs, terminated, truncated, next_info)
        total += reward
        obs, info, done = next_obs, next_info, terminated or truncated
    agent.end_episode(total, info)           # info of the terminal step (PPA objectives in it)

Contract
--------
``__init__(env, seed, *, budget=None, **hyperparams)``
    ``env`` is the environment or its :class:`EnvSpaces`; ``seed`` seeds every random
    generator the agent owns (numpy, torch, optuna); ``budget`` is the total number of
    evaluations of the run (for schedules such as epsilon decay or annealing temperature;
    may be None). Unknown hyperparameters raise ``TypeError``.
``act(obs, info) -> action``
    A sample of ``env.action_space``: ``{"discrete": np.int64[nd], "continuous":
    np.float32[nc] in [-1, 1]}``. ``info["action_mask"]`` is a tuple of ``nd`` boolean arrays,
    ``mask[j][v]`` True when option ``v`` of discrete dim ``j`` is legal at this step;
    irrelevant dims allow exactly one option. ``info["continuous_mask"]`` (bool ``[nc]``)
    marks the continuous dims this step reads; the others are ignored. The env projects a
    masked choice onto the nearest legal option, so masks are advice an agent should follow
    (learned agents: mask logits), never a crash. ``info["episode"]`` (int) and
    ``info["step"]`` identify the episode and construction step.
``observe(obs, action, reward, next_obs, terminated, truncated, info)``
    One transition (reward is 0 except on the terminal step). Learning agents store it.
``end_episode(total_reward, info)``
    Called once per episode after its terminal transition, with the terminal ``info``:
    ``info["objectives"]`` = ``{"perf": .., "power": .., "area": ..}`` (normalised, the
    reward's terms), ``info["feasible"]``, ``info["ppa"]`` (summary of the design).
``state_dict() -> dict`` / ``load_state_dict(state)``
    Everything needed to continue identically: parameters, optimiser states, replay
    buffer, schedules, counters and the states of *all* random generators
    (``np.random.Generator.bit_generator.state``, ``torch.get_rng_state()`` /
    ``torch.Generator.get_state()``, optuna sampler RNG). The result is pickled by the
    checkpoint writer (torch tensors are fine). After ``load_state_dict`` of a state taken
    between episodes, the agent must act exactly as the original would have.
``hyperparameters() -> dict``
    JSON-ready hyperparameters, stored in the run metadata.
``batch_size`` (class attribute, default 1)
    Episodes the agent can run in lockstep. With ``batch_size = B > 1`` the loop runs B
    episodes interleaved step by step (``act`` is called for episode ``info["episode"]``
    of each lane in turn), evaluates the B designs in one vectorised PPA call, then calls
    ``observe``/``end_episode`` for each lane in episode order. Agents whose decisions
    depend on the previous episode's reward (SAC, TPE, SA) keep B = 1.

Registry
--------
:func:`make_agent` resolves names lazily (modules are imported on first use):
``random``, ``grid``, ``tpe``, ``nsga2``, ``sa``, ``ga`` here, and ``sac-moe`` from
``explorer.agents.sac_moe``, which must define ``SacMoeAgent`` (a subclass of
:class:`Agent`). :func:`register` adds more.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

__all__ = ["Agent", "EnvSpaces", "Action", "AGENT_NAMES", "make_agent", "register", "agent_class"]

#: An action of the environment: ``{"discrete": int64[nd], "continuous": float32[nc]}``.
Action = dict[str, np.ndarray]


@dataclass(frozen=True)
class EnvSpaces:
    """What an agent may know about the environment without holding it.

    Members
    -------
    observation_space : gym.spaces.Box
        Flat float32 observation.
    action_space : gym.spaces.Dict
        ``{"discrete": MultiDiscrete(nvec), "continuous": Box(-1, 1, (nc,), float32)}``,
        the same at every step.
    episode_steps : int
        Construction steps per episode (fixed).
    obs_slices : Mapping[str, slice]
        Named parts of the observation: ``"stage"`` (one-hot of the step), ``"mode"``,
        ``"workload"``, ``"node"`` (features a gate may use to specialise by node),
        ``"design"`` (the partial design).
    discrete_names, continuous_names : tuple[str, ...]
        Names of the action dims (``explorer.space`` documents each).
    stage_names : tuple[str, ...]
        Name of each construction step.
    """

    observation_space: gym.spaces.Box
    action_space: gym.spaces.Dict
    episode_steps: int
    obs_slices: Mapping[str, slice]
    discrete_names: tuple[str, ...]
    continuous_names: tuple[str, ...]
    stage_names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.observation_space, gym.spaces.Box):
            raise TypeError("EnvSpaces.observation_space must be a gymnasium Box")
        if not isinstance(self.action_space, gym.spaces.Dict):
            raise TypeError("EnvSpaces.action_space must be a gymnasium Dict")
        if isinstance(self.episode_steps, bool) or not isinstance(self.episode_steps, int) \
                or self.episode_steps < 1:
            raise ValueError(f"EnvSpaces.episode_steps must be a positive integer, not {self.episode_steps!r}")

    @property
    def nvec(self) -> np.ndarray:
        """Options per discrete dim."""
        return np.asarray(self.action_space["discrete"].nvec, np.int64)

    @property
    def n_continuous(self) -> int:
        return int(self.action_space["continuous"].shape[0])

    @staticmethod
    def of(env: gym.Env | EnvSpaces) -> EnvSpaces:
        """The spaces of ``env`` (an :class:`EnvSpaces` is returned unchanged)."""
        if isinstance(env, EnvSpaces):
            return env
        inner = getattr(env, "unwrapped", env)
        spaces = getattr(inner, "agent_spaces", None)
        if not isinstance(spaces, EnvSpaces):
            raise TypeError(f"{type(inner).__name__} does not describe its spaces (agent_spaces)")
        return spaces


class Agent(abc.ABC):
    """Base class of every search agent (see the module docstring for the contract).

    Parameters
    ----------
    env : gym.Env or EnvSpaces
        The environment (only its spaces are kept).
    seed : int
        Seed of every random generator the agent owns.
    budget : int or None
        Total evaluations of the run, for schedules.
    **hyperparams
        Algorithm settings; subclasses declare them as keyword-only arguments.
    """

    #: Registry name, e.g. ``"ga"``.
    name: ClassVar[str] = ""
    #: Episodes the agent can run in lockstep (see the module docstring).
    batch_size: int = 1

    def __init__(self, env: gym.Env | EnvSpaces, seed: int, *, budget: int | None = None) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise ValueError(f"budget must be a positive integer, not {budget!r}")
        self.spaces = EnvSpaces.of(env)
        self.seed = int(seed)
        self.budget = budget

    @abc.abstractmethod
    def act(self, obs: np.ndarray, info: Mapping[str, Any]) -> Action:
        """The action for observation ``obs`` of episode ``info["episode"]``."""

    def observe(self, obs: np.ndarray, action: Action, reward: float, next_obs: np.ndarray,  # noqa: B027
                terminated: bool, truncated: bool, info: Mapping[str, Any]) -> None:
        """One transition of the current episode (default: ignored)."""

    def end_episode(self, total_reward: float, info: Mapping[str, Any]) -> None:  # noqa: B027
        """The episode ``info["episode"]`` ended with ``total_reward`` (default: ignored)."""

    @abc.abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Picklable state (RNG states included) to continue identically."""

    @abc.abstractmethod
    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""

    def hyperparameters(self) -> dict[str, Any]:
        """JSON-ready settings of this agent (stored with the run)."""
        return {}


# name -> (module, class); resolved on first use so optional dependencies stay optional.
_REGISTRY: dict[str, tuple[str, str]] = {
    "sac-moe": ("explorer.agents.sac_moe", "SacMoeAgent"),
    "random": ("explorer.agents.random_search", "RandomAgent"),
    "grid": ("explorer.agents.grid", "GridAgent"),
    "tpe": ("explorer.agents.optuna_agents", "TPEAgent"),
    "nsga2": ("explorer.agents.optuna_agents", "NSGA2Agent"),
    "ga": ("explorer.agents.genetic", "GAAgent"),
    "sa": ("explorer.agents.annealing", "AnnealingAgent"),
}

#: Names accepted by :func:`make_agent`.
AGENT_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def register(name: str, module: str, cls: str) -> None:
    """Register ``module.cls`` under ``name`` (imported lazily)."""
    if not isinstance(name, str) or not name:
        raise ValueError("agent name must be a non-empty string")
    _REGISTRY[name] = (module, cls)


def agent_class(name: str) -> type[Agent]:
    """The class registered as ``name``; ValueError names the known agents."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    module, cls = _REGISTRY[name]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name is not None and module.startswith(e.name):
            raise ValueError(f"agent {name!r} is not available ({module} is not installed)") from None
        raise
    klass = getattr(mod, cls, None)
    if not (isinstance(klass, type) and issubclass(klass, Agent)):
        raise ValueError(f"agent {name!r}: {module}.{cls} is not an Agent subclass")
    return klass


def make_agent(name: str, env: gym.Env | EnvSpaces, seed: int, **kw: Any) -> Agent:
    """Construct the agent registered as ``name`` for ``env`` with ``seed``.

    ``kw`` holds ``budget`` and the agent's hyperparameters.
    """
    return agent_class(name)(env, seed, **kw)
