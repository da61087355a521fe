"""The programmable vector tile core (Amaranth): front end, issue, units, memories."""

from .core import Core
from .signature import core_signature

__all__ = ["Core", "core_signature"]
