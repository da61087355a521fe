"""Search agents: the common interface, the registry and the baselines."""

from .base import AGENT_NAMES, Action, Agent, EnvSpaces, agent_class, make_agent, register

__all__ = ["AGENT_NAMES", "Action", "Agent", "EnvSpaces", "agent_class", "make_agent", "register"]
