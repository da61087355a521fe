"""The tile top: core + network interface + router, one Verilog module per tile class."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from explorer.design import MeshConfig, TileConfig

from ..noc.ni import NetworkInterface
from ..noc.packet import COORD_BITS, link_signature
from ..noc.router import Router
from .core import Core

__all__ = ["Tile", "MESH_PORTS", "tile_signature"]

#: Router ports a tile exposes to its neighbours (the local port stays inside the tile).
MESH_PORTS = ("n", "e", "s", "w")


def tile_signature(flit_bits: int) -> wiring.Signature:
    """The tile's ports: four mesh links and its (row, col) position."""
    link = link_signature(flit_bits)
    members = {}
    for p in MESH_PORTS:
        members[f"{p}_in"] = In(link)
        members[f"{p}_out"] = Out(link)
    members["row"] = In(COORD_BITS)
    members["col"] = In(COORD_BITS)
    return wiring.Signature(members)


class Tile(wiring.Component):
    """Core + NI + router for one tile class.

    The tile's position arrives on the ``row``/``col`` inputs (the mesh top drives them
    with constants), so one elaborated tile serves every position of its class; the
    tile id ``row * cols + col`` is computed here for ``csrr mhartid``.

    Parameters
    ----------
    tile : TileConfig
    mesh : MeshConfig
        Supplies ``flit_bits``, ``cols`` and the hop latency the router must match.
    core : wiring.Component, optional
        A component with the core's signature (:func:`hwgen.tile.signature.core_signature`);
        by default ``Core(tile, wmem_init=wmem_init)``.
    wmem_init : sequence of int, optional
        WMEM rows (the ROM contents of a ``wmem_kind == "rom"`` tile).
    shared : bool
        Build the default core for emission (:class:`~hwgen.tile.core.Core`'s ``shared``).

    Members
    -------
    {p}_in : In(link_signature(flit_bits)), {p}_out : Out(link_signature(flit_bits))
        For p in :data:`MESH_PORTS`.
    row, col : In(6)
    """

    def __init__(self, tile: TileConfig, mesh: MeshConfig, *, core: wiring.Component | None = None,
                 wmem_init: Sequence[int] | None = None, shared: bool = False):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        if not isinstance(mesh, MeshConfig):
            raise TypeError(f"mesh must be a MeshConfig, not {mesh!r}")
        if mesh.hop_cycles != Router.HOP_CYCLES:
            raise ValueError(f"MeshConfig.hop_cycles = {mesh.hop_cycles}, but the router takes "
                             f"{Router.HOP_CYCLES} cycles per hop")
        self.tile, self.mesh = tile, mesh
        super().__init__(tile_signature(mesh.flit_bits))
        self.router = Router(mesh.flit_bits)
        self.ni = NetworkInterface(tile, mesh)
        self.core = core if core is not None else Core(tile, wmem_init=wmem_init, shared=shared)

    def elaborate(self, platform):
        m = Module()
        m.submodules.router = router = self.router
        m.submodules.ni = ni = self.ni
        m.submodules.core = core = self.core
        m.d.comb += [router.row.eq(self.row), router.col.eq(self.col),
                     ni.row.eq(self.row), ni.col.eq(self.col),
                     core.tile_id.eq(self.row * self.mesh.cols + self.col)]
        for p in MESH_PORTS:
            wiring.connect(m, wiring.flipped(getattr(self, f"{p}_in")), getattr(router, f"{p}_in"))
            wiring.connect(m, getattr(router, f"{p}_out"), wiring.flipped(getattr(self, f"{p}_out")))
        wiring.connect(m, router.l_out, ni.net_in)
        wiring.connect(m, ni.net_out, router.l_in)
        wiring.connect(m, ni.mem, core.mem)
        wiring.connect(m, ni.ctrl, core.ctrl)
        wiring.connect(m, core.tx, ni.tx)
        wiring.connect(m, ni.rx, core.rx)
        return m
