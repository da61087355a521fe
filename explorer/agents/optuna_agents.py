"""Optuna-driven baselines over the genome: TPE and NSGA-II (ask-and-tell).

Each episode is one Optuna trial: ``study.ask()`` at its first step, one
``trial.suggest_float("<stage>.<dim>", lo, hi)`` per gene at each step (discrete genes in
[0, 1] pick among the legal options, see :mod:`explorer.agents.genome`), and
``study.tell`` when the episode ends. Studies live in memory; ``state_dict`` pickles the
whole study (trials, sampler and its RNG), so a resumed run asks exactly what the
uninterrupted one would have.

* ``tpe``: :class:`optuna.samplers.TPESampler` (multivariate, seeded), maximising the reward.
* ``nsga2``: :class:`optuna.samplers.NSGAIISampler` on three objectives (maximise Perf_n,
  minimise Power_n, minimise Area_n — the reward's normalised terms) with one constraint,
  the reward's total penalty (power over budget, memory, hazard, latency target; <= 0 is
  admissible). Its runs are compared with the others on the reward of what it evaluated.
"""

from __future__ import annotations

import contextlib
import pickle
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import optuna

from .genome import Gene, GenomeAgent

__all__ = ["OptunaAgent", "TPEAgent", "NSGA2Agent"]

_PENALTIES = ("power_violation", "memory", "hazard", "target")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Optuna flags multivariate TPE and constraints as experimental; that is known."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


class OptunaAgent(GenomeAgent):
    """A :class:`GenomeAgent` whose genes come from an Optuna study's trials."""

    def __init__(self, env: Any, seed: int, *, budget: int | None = None) -> None:
        super().__init__(env, seed, budget=budget)
        with _quiet():
            self.study = self._make_study()
        self._trials: dict[int, optuna.Trial] = {}

    def _make_study(self) -> optuna.Study:
        raise NotImplementedError

    def gene_values(self, episode: int, genes: tuple[Gene, ...]) -> Mapping[str, float]:
        trial = self._trials.get(episode)
        if trial is None:
            with _quiet():
                trial = self._trials[episode] = self.study.ask()
        with _quiet():
            return {g.name: trial.suggest_float(g.name, g.low, 1.0) for g in genes}

    def tell(self, episode: int, total_reward: float, info: Mapping[str, Any]) -> None:
        with _quiet():
            self.study.tell(self._trials.pop(episode), total_reward)

    def state_dict(self) -> dict[str, Any]:
        if self._trials:
            raise RuntimeError("cannot checkpoint with episodes in flight")
        return {"study": pickle.dumps(self.study)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.study = pickle.loads(state["study"])
        self._trials = {}


class TPEAgent(OptunaAgent):
    """Tree-structured Parzen estimator (Optuna), maximising the reward.

    Parameters
    ----------
    n_startup_trials : int
        Random trials before the Parzen estimators take over.
    multivariate : bool
        Joint (multivariate) TPE over all genes.
    """

    name = "tpe"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None,
                 n_startup_trials: int = 50, multivariate: bool = True) -> None:
        self.n_startup_trials = int(n_startup_trials)
        self.multivariate = bool(multivariate)
        super().__init__(env, seed, budget=budget)

    def _make_study(self) -> optuna.Study:
        sampler = optuna.samplers.TPESampler(seed=self.seed, n_startup_trials=self.n_startup_trials,
                                             multivariate=self.multivariate)
        return optuna.create_study(direction="maximize", sampler=sampler)

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "multivariate": self.multivariate}


class NSGA2Agent(OptunaAgent):
    """NSGA-II (Optuna) on (Perf_n, Power_n, Area_n) with the penalty as constraint.

    Parameters
    ----------
    population : int
        Population size; also the number of episodes run in lockstep.
    """

    name = "nsga2"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, population: int = 50) -> None:
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ValueError(f"population must be an integer of at least 2, not {population!r}")
        self.population = population
        self.batch_size = population
        super().__init__(env, seed, budget=budget)

    def _make_study(self) -> optuna.Study:
        sampler = optuna.samplers.NSGAIISampler(population_size=self.population, seed=self.seed)
        return optuna.create_study(directions=["maximize", "minimize", "minimize"], sampler=sampler)

    def tell(self, episode: int, total_reward: float, info: Mapping[str, Any]) -> None:
        trial = self._trials.pop(episode)
        t = info["terms"]
        trial.set_constraint("penalty", float(sum(t[k] for k in _PENALTIES)))
        with _quiet():
            self.study.tell(trial, [t["perf"], t["power"], t["area"]])

    def hyperparameters(self) -> dict[str, Any]:
        return {"population": self.population}
