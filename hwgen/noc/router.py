"""Five-port 2-D mesh router: XY routing, wormhole switching, round-robin outputs."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from .packet import COORD_BITS, HEADER_BITS, flit_layout, header_layout, link_signature

__all__ = ["PORTS", "ALLOWED_TURNS", "Router"]

#: Port names: north (row - 1), east (col + 1), south (row + 1), west (col - 1), local.
PORTS = ("n", "e", "s", "w", "l")

#: Outputs each input may feed. XY routing finishes the X leg before the Y leg, so a
#: packet that entered moving north/south never turns east/west again; the one exception
#: is S -> W, taken only at tile (0, 0) by packets leaving for the host port (the host
#: consumes every packet, so this last turn cannot close a dependency cycle). U-turns do
#: not exist. Pruning the crossbar to these 18 of 25 paths saves multiplexers; a packet
#: whose route is not in this table (a malformed destination) is dropped, never stuck.
ALLOWED_TURNS: dict[str, tuple[str, ...]] = {
    "l": ("n", "e", "s", "w", "l"),
    "w": ("n", "e", "s", "l"),      # moving east (and host packets entering at (0, 0))
    "e": ("n", "s", "w", "l"),      # moving west
    "n": ("s", "l"),                # moving south
    "s": ("n", "w", "l"),           # moving north (W: towards the host at (0, 0))
}


class Router(wiring.Component):
    """A wormhole router for one mesh position.

    Every input has a ``buffer_depth``-flit FIFO whose ``ready`` depends only on its fill
    level (so no combinational path runs from router to router); every output has one
    register. A head flit accepted by an input in cycle *t* is offered on its output in
    cycle *t* + :attr:`HOP_CYCLES` when that output is free; body flits follow one per
    cycle. An output, once granted to a packet's head, stays with that input until the
    flit with ``last`` passes (wormhole); free outputs are granted round-robin.

    Routing is dimension ordered (X first, then Y): row 0 is the north edge, column 0
    the west edge, and a header with ``dst_host`` is routed to tile (0, 0) and out of its
    west port, where the host port is attached.

    Parameters
    ----------
    flit_bits : int
        Link data width (a power of two, at least 64).
    buffer_depth : int
        Flits per input FIFO; 2 is the least that sustains one flit per cycle.

    Members
    -------
    {p}_in : In(link_signature(flit_bits)), {p}_out : Out(link_signature(flit_bits))
        For p in :data:`PORTS`.
    row, col : In(6)
        This router's position (inputs, so one router module serves every position).
    """

    #: Cycles a head flit spends in the router (input FIFO + output register).
    HOP_CYCLES = 2

    def __init__(self, flit_bits: int, *, buffer_depth: int = 2):
        if isinstance(buffer_depth, bool) or not isinstance(buffer_depth, int):
            raise TypeError(f"buffer_depth must be an integer, not {buffer_depth!r}")
        if buffer_depth < 2:
            raise ValueError(f"buffer_depth must be at least 2, not {buffer_depth}")
        self._flit_bits = flit_bits
        self._depth = buffer_depth
        link = link_signature(flit_bits)
        members = {}
        for p in PORTS:
            members[f"{p}_in"] = In(link)
            members[f"{p}_out"] = Out(link)
        members["row"] = In(COORD_BITS)
        members["col"] = In(COORD_BITS)
        super().__init__(members)

    @property
    def flit_bits(self) -> int:
        return self._flit_bits

    def elaborate(self, platform):
        m = Module()
        fl = flit_layout(self._flit_bits)
        n_out = len(PORTS)
        drop_bit = n_out                                  # route one-hot: 5 outputs + drop

        heads, valid, active, route_now, pop, drops = {}, {}, {}, {}, {}, {}
        for p in PORTS:
            fifo = m.submodules[f"buf_{p}"] = SyncFIFO(width=fl.size, depth=self._depth)
            link = getattr(self, f"{p}_in")
            m.d.comb += [fifo.w_data.eq(link.payload), fifo.w_en.eq(link.valid),
                         link.ready.eq(fifo.w_rdy)]
            head = fl(fifo.r_data)
            heads[p], valid[p] = head, fifo.r_rdy
            # Mid-packet state of an input: `active`, and `dropping` for a discarded packet.
            # Which output a forwarded packet holds is kept once, by that output's `owner`.
            active[p] = Signal(name=f"active_{p}")
            dropping = Signal(name=f"dropping_{p}")
            pop[p] = Signal(name=f"pop_{p}")
            m.d.comb += fifo.r_en.eq(pop[p])

            want = self._xy_route(m, p, head.data[:HEADER_BITS])
            legal = Cat(want[i] if o in ALLOWED_TURNS[p] else Const(0, 1)
                        for i, o in enumerate(PORTS))
            route_now[p] = Signal(n_out + 1, name=f"req_{p}")    # head flit: output or drop
            m.d.comb += route_now[p].eq(Cat(legal, ~legal.any()))
            drop = Signal(name=f"drop_{p}")
            m.d.comb += drop.eq(valid[p] & Mux(active[p], dropping, route_now[p][drop_bit]))
            drops[p] = drop
            with m.If(pop[p]):
                m.d.sync += active[p].eq(~head.last)
                with m.If(~active[p]):
                    m.d.sync += dropping.eq(route_now[p][drop_bit])

        popped = {p: [] for p in PORTS}
        for p in PORTS:                                   # dropped flits just leave the FIFO
            popped[p].append(drops[p])

        for oi, o in enumerate(PORTS):
            srcs = [p for p in PORTS if o in ALLOWED_TURNS[p]]
            k = len(srcs)
            link = getattr(self, f"{o}_out")
            out_valid = Signal(name=f"out_valid_{o}")
            out_flit = Signal(fl, name=f"out_flit_{o}")
            m.d.comb += [link.valid.eq(out_valid), link.payload.eq(out_flit)]

            locked = Signal(name=f"locked_{o}")
            owner = Signal(k, name=f"owner_{o}")
            last = Signal(range(k), name=f"rr_last_{o}")
            heads_req = Cat(valid[p] & ~active[p] & route_now[p][oi] for p in srcs)
            grant = self._round_robin(m, heads_req, last, name=f"grant_{o}")
            sel = Signal(k, name=f"sel_{o}")
            m.d.comb += sel.eq(Mux(locked, owner, grant))
            ready_src = Cat(valid[p] for p in srcs)
            can_load = ~out_valid | link.ready
            xfer = Signal(name=f"xfer_{o}")
            m.d.comb += xfer.eq(can_load & (sel & ready_src).any())

            picked = Signal(fl.size, name=f"mux_{o}")
            m.d.comb += picked.eq(0)
            for j, p in enumerate(srcs):
                with m.If(sel[j]):
                    m.d.comb += picked.eq(heads[p].as_value())
                popped[p].append(xfer & sel[j])
            picked_flit = fl(picked)

            with m.If(xfer):
                m.d.sync += [out_valid.eq(1), out_flit.eq(picked_flit),
                             locked.eq(~picked_flit.last), owner.eq(sel)]
                with m.If(~locked):
                    for j in range(k):
                        with m.If(grant[j]):
                            m.d.sync += last.eq(j)
            with m.Elif(link.ready):
                m.d.sync += out_valid.eq(0)

        for p in PORTS:
            m.d.comb += pop[p].eq(Cat(popped[p]).any())
        return m

    def _xy_route(self, m: Module, p: str, header_bits) -> Signal:
        """One-hot output (bit order :data:`PORTS`) the head flit at input ``p`` asks for."""
        hdr = header_layout()(header_bits)
        dst_row = Signal(COORD_BITS, name=f"dst_row_{p}")
        dst_col = Signal(COORD_BITS, name=f"dst_col_{p}")
        m.d.comb += [dst_row.eq(Mux(hdr.dst_host, 0, hdr.dst_row)),
                     dst_col.eq(Mux(hdr.dst_host, 0, hdr.dst_col))]
        want = Signal(len(PORTS), name=f"want_{p}")
        bit = {q: 1 << i for i, q in enumerate(PORTS)}
        with m.If(dst_col > self.col):
            m.d.comb += want.eq(bit["e"])
        with m.Elif(dst_col < self.col):
            m.d.comb += want.eq(bit["w"])
        with m.Elif(dst_row > self.row):
            m.d.comb += want.eq(bit["s"])
        with m.Elif(dst_row < self.row):
            m.d.comb += want.eq(bit["n"])
        with m.Elif(hdr.dst_host):
            m.d.comb += want.eq(bit["w"])
        with m.Else():
            m.d.comb += want.eq(bit["l"])
        return want

    @staticmethod
    def _round_robin(m: Module, reqs, last: Signal, *, name: str) -> Signal:
        """One-hot grant among ``reqs``; priority starts just after the ``last`` grant."""
        k = len(reqs)
        grant = Signal(k, name=name)
        # If/Elif rather than Switch: Yosys prunes unused cases per signal and Verilator
        # would then report the (harmless) incomplete case statements.
        for start in range(k):
            with (m.If if start == 0 else m.Elif)(last == start):
                order = [(start + 1 + j) % k for j in range(k)]
                for n, j in enumerate(order):
                    with (m.If if n == 0 else m.Elif)(reqs[j]):
                        m.d.comb += grant.eq(1 << j)
        return grant
