"""The mesh top: rows x cols tiles wired as a 2-D mesh, with the host port at tile (0, 0)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amaranth.hdl import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from explorer.design import Design, MeshConfig, TileConfig

from .noc.packet import link_signature
from .tile.tile import Tile, tile_signature

__all__ = ["connect_grid", "mesh_signature", "Mesh", "tile_instance_name"]


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


def mesh_signature(flit_bits: int) -> wiring.Signature:
    """The mesh top's ports: the host port, two flit streams at the west of tile (0, 0)."""
    link = link_signature(flit_bits)
    return wiring.Signature({"host_in": In(link), "host_out": Out(link)})


class Mesh(wiring.Component):
    """rows x cols tiles (heterogeneous), XY-routed mesh, host port at tile (0, 0).

    Parameters
    ----------
    design_or_mesh : Design or MeshConfig
    tile_modules : mapping of TileConfig to str, optional
        When given, every tile is an :class:`~amaranth.hdl.Instance` of the named Verilog
        module of its class (emitted separately, once per class: see :mod:`hwgen.emit`).
        When omitted, the tiles are elaborated inline (for amaranth.sim; Amaranth then
        writes one Verilog module per tile *position*).
    wmem_init : mapping of (row, col) to row values, optional
        ROM/SRAM WMEM contents per tile (inline mode only).

    Members
    -------
    host_in : In(link_signature(flit_bits))
        Host -> mesh flits, entering router (0, 0) at its west port.
    host_out : Out(link_signature(flit_bits))
        Mesh -> host flits, leaving router (0, 0) at its west port.
    """

    def __init__(self, design_or_mesh: Design | MeshConfig, *,
                 tile_modules: Mapping[TileConfig, str] | None = None,
                 wmem_init: Mapping[tuple[int, int], Any] | None = None):
        if isinstance(design_or_mesh, Design):
            mesh = design_or_mesh.mesh
        elif isinstance(design_or_mesh, MeshConfig):
            mesh = design_or_mesh
        else:
            raise TypeError(f"Mesh needs a Design or a MeshConfig, not {design_or_mesh!r}")
        if tile_modules is not None:
            missing = [t for t in mesh.tile_classes if t not in tile_modules]
            if missing:
                raise ValueError(f"tile_modules has no module for tile class {missing[0]}")
            if wmem_init:
                raise ValueError("wmem_init applies to inline tiles only, not to instances")
        self.mesh = mesh
        self._modules = dict(tile_modules) if tile_modules is not None else None
        self._wmem_init = dict(wmem_init or {})
        super().__init__(mesh_signature(mesh.flit_bits))

    def elaborate(self, platform):
        m = Module()
        mesh = self.mesh
        nodes = {}
        for r in range(mesh.rows):
            for c in range(mesh.cols):
                cfg, name = mesh.tile_at(r, c), tile_instance_name(r, c)
                if self._modules is None:
                    node = m.submodules[name] = Tile(cfg, mesh, wmem_init=self._wmem_init.get((r, c)))
                else:
                    node = tile_signature(mesh.flit_bits).create(path=(name,))
                    m.submodules[name] = _instance(self._modules[cfg], node)
                m.d.comb += [node.row.eq(r), node.col.eq(c)]
                nodes[r, c] = node
        connect_grid(m, nodes, mesh.rows, mesh.cols)
        wiring.connect(m, wiring.flipped(self.host_in), nodes[0, 0].w_in)
        wiring.connect(m, nodes[0, 0].w_out, wiring.flipped(self.host_out))
        return m


def _instance(module: str, iface: Any) -> Instance:
    """An instance of ``module`` whose ports are the tile signature's flattened members."""
    ports = [("i", "clk", ClockSignal()), ("i", "rst", ResetSignal())]
    for path, member, value in iface.signature.flatten(iface):
        direction = "i" if member.flow == In else "o"
        ports.append((direction, "__".join(map(str, path)), Value.cast(value)))
    return Instance(module, *ports)
