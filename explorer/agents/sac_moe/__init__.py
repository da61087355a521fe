"""Soft Actor-Critic with a Mixture-of-Experts actor for the hybrid design actions."""

from .agent import SacMoeAgent
from .config import SacMoeConfig

__all__ = ["SacMoeAgent", "SacMoeConfig"]
