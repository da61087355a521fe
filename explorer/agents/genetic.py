"""Genetic algorithm: Optuna's NSGA-II machinery with one objective (the reward).

With a single objective NSGA-II's non-dominated sorting is a plain fitness ranking, so
the sampler is an elitist (mu + lambda) real-coded GA over the genome: tournament
selection, simulated binary crossover (SBX, Deb & Agrawal 1995) and per-gene mutation
with probability 1 / genes. A generation is ``population`` episodes run in lockstep.
"""

from __future__ import annotations

from typing import Any

import optuna

from .optuna_agents import OptunaAgent

__all__ = ["GAAgent"]


class GAAgent(OptunaAgent):
    """Real-coded GA maximising the reward.

    Parameters
    ----------
    population : int
        Individuals per generation (episodes run in lockstep).
    crossover_prob : float
        Probability that a child is produced by SBX crossover rather than copied.
    eta : float
        SBX distribution index (larger = children closer to their parents).
    """

    name = "ga"

    def __init__(self, env: Any, seed: int, *, budget: int | None = None, population: int = 50,
                 crossover_prob: float = 0.9, eta: float = 15.0) -> None:
        if isinstance(population, bool) or not isinstance(population, int) or population < 2:
            raise ValueError(f"population must be an integer of at least 2, not {population!r}")
        if not 0.0 <= float(crossover_prob) <= 1.0:
            raise ValueError(f"crossover_prob must be between 0 and 1, not {crossover_prob!r}")
        if not float(eta) > 0:
            raise ValueError(f"eta must be positive, not {eta!r}")
        self.population = population
        self.batch_size = population
        self.crossover_prob = float(crossover_prob)
        self.eta = float(eta)
        super().__init__(env, seed, budget=budget)

    def _make_study(self) -> optuna.Study:
        sampler = optuna.samplers.NSGAIISampler(
            population_size=self.population, seed=self.seed, crossover_prob=self.crossover_prob,
            crossover=optuna.samplers.nsgaii.SBXCrossover(eta=self.eta))
        return optuna.create_study(direction="maximize", sampler=sampler)

    def hyperparameters(self) -> dict[str, Any]:
        return {"population": self.population, "crossover_prob": self.crossover_prob, "eta": self.eta}
