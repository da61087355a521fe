"""The mesh top: rows x cols tiles wired as a 2-D mesh, with the host port at tile (0, 0)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from explorer.design import Design, MeshConfig, TileConfig

from .noc.packet import link_signature

__all__ = ["connect_grid", "Mesh", "tile_instance_name"]


def tile_instance_name(row: int, col: int) -> str:
    """Stable submodule / Verilog instance name of the tile at (row, col)."""
    return f"tile_r{row}_c{col}"


def connect_grid(m: Module, nodes: Mapping[tuple[int, int], Any], rows: int, cols: int) -> None:
    """Wire neighbouring nodes (anything with ``{n,e,s,w}_{in,out}`` links) into a mesh.

    East/west links join (r, c) and (r, c + 1); north/south links join (r, c) and
    (r + 1, c). Links leaving the mesh edge are tied off: their inputs never carry a
    flit and their outputs always accept (a flit routed off the mesh, which only a
    destination outside the mesh causes, is discarded instead of blocking the router).
    The west port of (0, 0) is left open for the host port.
    """
    for r in range(rows):
        for c in range(cols):
            node = nodes[r, c]
            if c + 1 < cols:
                wiring.connect(m, node.e_out, nodes[r, c + 1].w_in)
                wiring.connect(m, nodes[r, c + 1].w_out, node.e_in)
            if r + 1 < rows:
                wiring.connect(m, node.s_out, nodes[r + 1, c].n_in)
                wiring.connect(m, nodes[r + 1, c].n_out, node.s_in)
            edges = [("n", r == 0), ("s", r == rows - 1), ("e", c == cols - 1),
                     ("w", c == 0 and r != 0)]
            for p, on_edge in edges:
                if on_edge:
                    m.d.comb += [getattr(node, f"{p}_in").valid.eq(0),
                                 getattr(node, f"{p}_out").ready.eq(1)]
