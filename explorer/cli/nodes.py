"""``llm2silicon nodes``: the technology nodes and off-chip memories, with their sources."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..tech import (
    CONSTANT_SOURCES,
    MAX_POWER_DENSITY_W_PER_MM2,
    NODE_NAMES,
    OFFCHIP_FIGURES,
    RETICLE_MM2,
    TECH_FIGURES,
    OffchipMemory,
    Source,
    TechNode,
    all_nodes,
    all_offchip,
)
from . import app

__all__ = ["nodes", "figure_unit", "nodes_json"]

#: Field-name suffix -> unit (the data file's naming rule; longest suffix first).
_UNITS = (
    ("_mw_per_mm2", "mW/mm^2"), ("_pj_per_bit_mm", "pJ/bit/mm"), ("_pj_per_bit", "pJ/bit"),
    ("_ps_per_mm", "ps/mm"), ("_mm2_per_channel", "mm^2"), ("_kgates_per_channel", "kgate"),
    ("_gib_per_channel", "GiB"), ("gbytes_per_s_per_channel", "GB/s"), ("_um2", "um^2"),
    ("_pj", "pJ"), ("_fj", "fJ"), ("_mhz", "MHz"), ("_v", "V"), ("pj_per_bit", "pJ/bit"),
)

_LETTER = {"quoted": "Q", "derived": "D", "assumed": "A"}


def figure_unit(name: str) -> str:
    """Unit of a figure from its name (``"fp16_mac_pj"`` -> ``"pJ"``); ``""`` if dimensionless."""
    for suffix, unit in _UNITS:
        if name.endswith(suffix):
            return unit
    return ""


def _entry(value: float, source: Source) -> dict[str, Any]:
    return {"value": value, "status": source.status, "ref": source.ref, "note": source.note,
            "url": source.url}


def _figures(record: TechNode | OffchipMemory, names: tuple[str, ...]) -> dict[str, Any]:
    return {n: {**_entry(getattr(record, n), record.sources[n]), "unit": figure_unit(n)}
            for n in names}


def nodes_json() -> dict[str, Any]:
    """Every node, off-chip memory and constant with value, unit and source."""
    return {
        "schema_version": 1,
        "status_meaning": {"quoted": "taken from ref", "derived": "computed; note gives the formula",
                           "assumed": "no direct source; note says why it is reasonable"},
        "nodes": {n.name: {"feature_nm": n.feature_nm, **_figures(n, TECH_FIGURES)}
                  for n in all_nodes()},
        "offchip": {m.name: _figures(m, OFFCHIP_FIGURES) for m in all_offchip()},
        "constants": {
            "RETICLE_MM2": {**_entry(RETICLE_MM2, CONSTANT_SOURCES["RETICLE_MM2"]), "unit": "mm^2"},
            "MAX_POWER_DENSITY_W_PER_MM2": {
                **_entry(MAX_POWER_DENSITY_W_PER_MM2, CONSTANT_SOURCES["MAX_POWER_DENSITY_W_PER_MM2"]),
                "unit": "W/mm^2"},
        },
    }


def _console() -> Console:
    """Rich console; 160 columns when writing to a file or pipe (rich would assume 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=160)


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 1000 else f"{x:.4g}"


def _label(name: str, shown: str | None = None) -> Text:
    """``name [unit]`` as plain text (square brackets would otherwise be read as rich markup)."""
    unit = figure_unit(name)
    shown = name if shown is None else shown
    return Text(f"{shown} [{unit}]" if unit else shown)


def _value(record: TechNode | OffchipMemory, name: str) -> str:
    return f"{_fmt(getattr(record, name))} {_LETTER[record.sources[name].status]}"


def _node_table(nodes: tuple[TechNode, ...]) -> Table:
    table = Table(title="Technology nodes (Q quoted, D derived, A assumed; --sources for references)")
    table.add_column("figure", no_wrap=True)
    for n in nodes:
        table.add_column(n.name, justify="right", no_wrap=True)
    for name in TECH_FIGURES:
        table.add_row(_label(name), *(_value(n, name) for n in nodes))
    table.add_row(Text("SRAM macro [Mb/mm^2]"), *(f"{1 / n.sram_um2_per_bit:.3g}" for n in nodes))
    table.add_row(Text("ROM macro [Mb/mm^2]"), *(f"{1 / n.rom_um2_per_bit:.3g}" for n in nodes))
    return table


def _memory_table(mems: tuple[OffchipMemory, ...]) -> Table:
    table = Table(title="Off-chip memories (per x16 channel for LPDDR, per 1024-bit stack for HBM)")
    table.add_column("kind", no_wrap=True)
    for name in OFFCHIP_FIGURES:
        table.add_column(_label(name, name.removesuffix("_per_channel")), justify="right",
                         no_wrap=True)
    for m in mems:
        table.add_row(m.name, *(_value(m, name) for name in OFFCHIP_FIGURES))
    return table


def _source_table(title: str, rows: Mapping[str, Mapping[str, tuple[float, Source]]]) -> Table:
    table = Table(title=title, show_lines=True)
    table.add_column("item", no_wrap=True)
    table.add_column("figure", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("st", no_wrap=True)
    table.add_column("source: ref / note / url", overflow="fold")
    for item, figures in rows.items():
        for name, (value, src) in figures.items():
            text = src.ref + (f"\nnote: {src.note}" if src.note else "") + (f"\n{src.url}" if src.url else "")
            table.add_row(item, _label(name), _fmt(value), _LETTER[src.status], Text(text))
    return table


@app.command("nodes")
def nodes(
    json_out: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON (with sources).")]
    = False,
    sources: Annotated[bool, typer.Option("--sources", help="Print every figure's source and status.")]
    = False,
    memories: Annotated[bool, typer.Option("--memories", help="Only the off-chip memory kinds.")]
    = False,
) -> None:
    """The seven technology nodes (3-28 nm) and the off-chip memories, with units and sources."""
    if json_out:
        data = nodes_json()
        if memories:
            data = {k: v for k, v in data.items() if k != "nodes"}
        typer.echo(json.dumps(data, indent=2))
        return
    console = _console()
    node_list, mem_list = all_nodes(), all_offchip()
    if sources:
        if not memories:
            console.print(_source_table("Node figures and their sources", {
                n.name: {f: (getattr(n, f), n.sources[f]) for f in TECH_FIGURES} for n in node_list}))
        console.print(_source_table("Off-chip memory figures and their sources", {
            m.name: {f: (getattr(m, f), m.sources[f]) for f in OFFCHIP_FIGURES} for m in mem_list}))
        console.print(_source_table("Constants", {"constants": {
            "RETICLE_MM2": (RETICLE_MM2, CONSTANT_SOURCES["RETICLE_MM2"]),
            "MAX_POWER_DENSITY_W_PER_MM2": (MAX_POWER_DENSITY_W_PER_MM2,
                                            CONSTANT_SOURCES["MAX_POWER_DENSITY_W_PER_MM2"])}}))
        return
    if not memories:
        console.print(_node_table(node_list))
    console.print(_memory_table(mem_list))
    console.print(f"reticle limit {RETICLE_MM2:.0f} mm^2; max power density "
                  f"{MAX_POWER_DENSITY_W_PER_MM2:.2f} W/mm^2 (H100: 700 W / 814 mm^2); "
                  f"nodes {', '.join(NODE_NAMES)}")
