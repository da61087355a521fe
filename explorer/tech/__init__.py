"""Technology nodes and off-chip memories, loaded from the cited data file ``nodes.toml``.

>>> from explorer.tech import load_node
>>> load_node("3nm").fmax_mhz
1000.0

The data file is validated on first use: every :class:`TechNode` / :class:`OffchipMemory`
figure must be present, positive and carry a source (``ref``, ``status``, ``note``, ``url``);
a broken file raises :class:`TechDataError` naming the node, the figure and the problem.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import InputError
from .node import (
    CONSTANT_SOURCES,
    MAX_POWER_DENSITY_W_PER_MM2,
    OFFCHIP_FIGURES,
    RETICLE_MM2,
    TECH_FIGURES,
    OffchipMemory,
    Source,
    TechNode,
)

__all__ = [
    "NODE_NAMES",
    "OFFCHIP_KINDS",
    "DATA_PATH",
    "TechDataError",
    "load_node",
    "load_offchip",
    "all_nodes",
    "all_offchip",
    "canonical_node_name",
    "parse_nodes",
    "parse_offchip",
    "Source",
    "TechNode",
    "OffchipMemory",
    "TECH_FIGURES",
    "OFFCHIP_FIGURES",
    "RETICLE_MM2",
    "MAX_POWER_DENSITY_W_PER_MM2",
    "CONSTANT_SOURCES",
]

#: The seven nodes of the source paper, smallest first.
NODE_NAMES: tuple[str, ...] = ("3nm", "5nm", "7nm", "10nm", "14nm", "22nm", "28nm")

#: Off-chip memory kinds, in the order of :data:`explorer.design.OFFCHIP_KINDS`.
OFFCHIP_KINDS: tuple[str, ...] = ("lpddr4x", "lpddr5", "lpddr5x", "hbm2e", "hbm3")

#: The cited data file shipped with the package.
DATA_PATH = Path(__file__).with_name("nodes.toml")

_SOURCE_KEYS = ("value", "status", "ref", "note", "url")


class TechDataError(ValueError):
    """The technology data file is malformed (a developer error, not user input)."""


def canonical_node_name(name: str | int) -> str:
    """``"3nm"`` for ``"3nm"``, ``"3"``, ``"3NM"``, ``" 3 nm "`` or ``3``.

    Raises
    ------
    InputError
        The name is not one of :data:`NODE_NAMES`.
    """
    if isinstance(name, bool) or not isinstance(name, (str, int)):
        raise InputError(f"unknown node {name!r}; known: {', '.join(NODE_NAMES)}")
    text = str(name).strip().lower().replace(" ", "")
    key = text if text.endswith("nm") else text + "nm"
    if key not in NODE_NAMES:
        raise InputError(f"unknown node {str(name)!r}; known: {', '.join(NODE_NAMES)}")
    return key


def load_node(name: str | int) -> TechNode:
    """The :class:`TechNode` called ``name`` (any spelling :func:`canonical_node_name` takes)."""
    return _nodes()[canonical_node_name(name)]


def load_offchip(kind: str) -> OffchipMemory:
    """The :class:`OffchipMemory` of ``kind`` (case-insensitive, one of :data:`OFFCHIP_KINDS`).

    Raises
    ------
    InputError
        ``kind`` is not a known off-chip memory.
    """
    key = kind.strip().lower() if isinstance(kind, str) else None
    if key not in OFFCHIP_KINDS:
        raise InputError(f"unknown off-chip memory {kind!r}; known: {', '.join(OFFCHIP_KINDS)}")
    return _offchip()[key]


def all_nodes() -> tuple[TechNode, ...]:
    """Every node, in :data:`NODE_NAMES` order."""
    nodes = _nodes()
    return tuple(nodes[n] for n in NODE_NAMES)


def all_offchip() -> tuple[OffchipMemory, ...]:
    """Every off-chip memory kind, in :data:`OFFCHIP_KINDS` order."""
    mems = _offchip()
    return tuple(mems[k] for k in OFFCHIP_KINDS)


# --- loading and validation ----------------------------------------------------------------

@functools.cache
def _raw() -> dict[str, Any]:
    try:
        with DATA_PATH.open("rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise TechDataError(f"{DATA_PATH.name}: cannot read: {e}") from e
    if data.get("schema_version") != 1:
        raise TechDataError(f"{DATA_PATH.name}: schema_version must be 1, not {data.get('schema_version')!r}")
    return data


@functools.cache
def _nodes() -> Mapping[str, TechNode]:
    return MappingProxyType(parse_nodes(_raw()))


@functools.cache
def _offchip() -> Mapping[str, OffchipMemory]:
    return MappingProxyType(parse_offchip(_raw()))


def parse_nodes(data: Mapping[str, Any]) -> dict[str, TechNode]:
    """Validate the ``[node.*]`` tables of a parsed data file and build the records."""
    tables = _section(data, "node", NODE_NAMES)
    nodes = {}
    for name in NODE_NAMES:
        where = f"node {name!r}"
        table = tables[name]
        _no_extra(where, table, ("feature_nm", *TECH_FIGURES))
        feature = table.get("feature_nm")
        if feature != int(name.removesuffix("nm")):
            raise TechDataError(f"{where}: feature_nm must be {name.removesuffix('nm')}, not {feature!r}")
        values, sources = _figures(where, table, TECH_FIGURES)
        try:
            nodes[name] = TechNode(name=name, feature_nm=feature, sources=sources, **values)
        except (TypeError, ValueError) as e:
            raise TechDataError(f"{where}: {e}") from e
    return nodes


def parse_offchip(data: Mapping[str, Any]) -> dict[str, OffchipMemory]:
    """Validate the ``[offchip.*]`` tables of a parsed data file and build the records."""
    tables = _section(data, "offchip", OFFCHIP_KINDS)
    mems = {}
    for kind in OFFCHIP_KINDS:
        where = f"off-chip memory {kind!r}"
        table = tables[kind]
        _no_extra(where, table, ("unit", *OFFCHIP_FIGURES))
        values, sources = _figures(where, table, OFFCHIP_FIGURES)
        try:
            mems[kind] = OffchipMemory(name=kind, sources=sources, **values)
        except (TypeError, ValueError) as e:
            raise TechDataError(f"{where}: {e}") from e
    return mems


def _section(data: Mapping[str, Any], key: str, names: tuple[str, ...]) -> Mapping[str, Any]:
    section = data.get(key)
    if not isinstance(section, Mapping):
        raise TechDataError(f"{DATA_PATH.name}: missing [{key}.*] tables")
    found = set(section)
    if found != set(names):
        missing = sorted(set(names) - found)
        extra = sorted(found - set(names))
        raise TechDataError(f"{DATA_PATH.name}: [{key}.*] must be exactly {', '.join(names)}"
                            + (f"; missing {', '.join(missing)}" if missing else "")
                            + (f"; unexpected {', '.join(extra)}" if extra else ""))
    return section


def _no_extra(where: str, table: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise TechDataError(f"{where}: unknown figure {extra[0]!r}")


def _figures(where: str, table: Mapping[str, Any],
             names: tuple[str, ...]) -> tuple[dict[str, float], Mapping[str, Source]]:
    values: dict[str, float] = {}
    sources: dict[str, Source] = {}
    for name in names:
        entry = table.get(name)
        if entry is None:
            raise TechDataError(f"{where}: figure {name!r} is missing")
        if not isinstance(entry, Mapping):
            raise TechDataError(f"{where}: figure {name!r} must be a table with "
                                f"{', '.join(_SOURCE_KEYS)}, not a bare {type(entry).__name__}")
        missing = [k for k in _SOURCE_KEYS if k not in entry]
        if missing:
            raise TechDataError(f"{where}: figure {name!r} has no {missing[0]!r}")
        unknown = sorted(set(entry) - set(_SOURCE_KEYS))
        if unknown:
            raise TechDataError(f"{where}: figure {name!r} has unknown key {unknown[0]!r}")
        value = entry["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= 0:
            raise TechDataError(f"{where}: figure {name!r} must be a positive number, not {value!r}")
        try:
            sources[name] = Source(ref=entry["ref"], status=entry["status"],
                                   note=entry["note"], url=entry["url"])
        except (TypeError, ValueError) as e:
            raise TechDataError(f"{where}: figure {name!r}: {e}") from e
        values[name] = float(value)
    return values, MappingProxyType(sources)
