"""Network interface: turns packets into core memory requests and control, and back."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, Value, unsigned
from amaranth.lib import enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from explorer.design import MeshConfig, TileConfig

from ..tile.signature import CtrlSignature, MemPortSignature, tx_layout
from .packet import COORD_BITS, HEADER_BITS, HEADER_FIELDS, Kind, header_layout, link_signature

__all__ = ["NetworkInterface", "RX_FIFO_DEPTH", "divider_constants"]

#: Received vectors buffered for ``vrecv``. Two keep the buffer within ORFS's default
#: SYNTH_MEMORY_MAX_BITS (4096) even at vlen 2048; more senders than that wait in the
#: network (backpressure), which the kernel compiler's send/recv pairing must respect.
RX_FIFO_DEPTH = 2


def divider_constants(cols: int, n_ids: int) -> tuple[int, int]:
    """``(mult, shift)`` with ``(d * mult) >> shift == d // cols`` for every ``d < n_ids``.

    The NI maps a ``vsend`` tile id to (row, col) with this multiply-shift instead of
    a divider (Granlund & Montgomery 1994); the smallest exact shift is found by
    checking every id, which is cheap because ``n_ids <= 4096``.
    """
    for shift in range(0, 40):
        mult = -(-(1 << shift) // cols)
        if all((d * mult) >> shift == d // cols for d in range(n_ids)):
            return mult, shift
    raise AssertionError(f"no multiply-shift divides by {cols} below {n_ids}")


def _header(**fields) -> Value:
    """A header flit value; every field not named is a constant 0 (all bits driven)."""
    parts = []
    for name, width in HEADER_FIELDS:
        v = fields.pop(name, 0)
        parts.append(Const(v.value, width) if isinstance(v, Kind) else Value.cast(v)[:width]
                     if not isinstance(v, int) else Const(v, width))
    assert not fields, fields
    return Cat(*parts)


class _Rx(enum.Enum, shape=3):
    HDR = 0
    WRITE = 1
    READ = 2
    VEC = 3
    DRAIN = 4


class _Tx(enum.Enum, shape=3):
    IDLE = 0
    RR_HDR = 1
    RR_PAY = 2
    DONE_HDR = 3
    DONE_PAY = 4
    VEC_HDR = 5
    VEC_PAY = 6


class NetworkInterface(wiring.Component):
    """The NI on a router's local port (packet layout: :mod:`hwgen.noc.packet`).

    Receive side (``net_in``, one packet at a time):

    * MEM_WRITE: one 32-bit ``mem.req`` write per payload word (``length`` words from
      word ``addr`` on), one word per cycle while the core accepts.
    * MEM_READ: ``length`` reads; the words are packed into a READ_REPLY sent back to
      the request's source (host or tile). Reads overlap with sending the reply.
    * START: a one-cycle ``ctrl.start`` pulse.
    * VEC: the ``vlen``-bit payload goes into an :data:`RX_FIFO_DEPTH`-entry FIFO that
      feeds the core's ``rx``; when it is full the packet waits in the network.
    * anything else (DONE, READ_REPLY) is discarded; so are words beyond ``length``.

    Transmit side (``net_out``): READ_REPLY first, then DONE (on the core's ``done``
    pulse, payload = ``ctrl.cycles``, to the host), then VEC for each ``tx`` beat (tile
    id -> (id // cols, id % cols); an id outside the mesh is dropped). Each packet
    leaves header first, then one payload flit per cycle while the router accepts.

    The host must send MEM_WRITE/MEM_READ only to a tile that is not running (the core
    serves ``mem`` only between DONE and START).

    Parameters
    ----------
    tile : TileConfig
    mesh : MeshConfig
        Supplies ``flit_bits`` and ``cols`` / ``n_tiles`` (tile id <-> coordinates).
    """

    def __init__(self, tile: TileConfig, mesh: MeshConfig):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        if not isinstance(mesh, MeshConfig):
            raise TypeError(f"mesh must be a MeshConfig, not {mesh!r}")
        self._tile, self._mesh = tile, mesh
        link = link_signature(mesh.flit_bits)
        super().__init__({
            "net_in": In(link), "net_out": Out(link),
            "mem": In(MemPortSignature()), "ctrl": In(CtrlSignature()),
            "tx": In(stream.Signature(tx_layout(tile.vlen))),
            "rx": Out(stream.Signature(unsigned(tile.vlen))),
            "row": In(COORD_BITS), "col": In(COORD_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        fb, vlen = self._mesh.flit_bits, self._tile.vlen
        wpf = fb // 32
        m.submodules.rx_fifo = rx_fifo = SyncFIFO(width=vlen, depth=RX_FIFO_DEPTH)
        m.d.comb += [self.rx.valid.eq(rx_fifo.r_rdy), self.rx.payload.eq(rx_fifo.r_data),
                     rx_fifo.r_en.eq(self.rx.ready)]

        # state shared by the receive and transmit machines
        hl = header_layout()
        got = Signal(hl)                                   # latched request header
        got_last = Signal()                                # header flit had `last`
        rr_active = Signal()                               # a READ_REPLY is owed
        rr_buf = Signal(fb)
        rr_valid, rr_last = Signal(), Signal()             # rr_buf holds a payload flit
        done_pending = Signal()

        self._receive(m, rx_fifo, got, got_last, rr_active, rr_buf, rr_valid, rr_last, wpf)
        self._transmit(m, got, rr_active, rr_buf, rr_valid, rr_last, done_pending)
        with m.If(self.ctrl.done):                         # after _transmit: a set wins
            m.d.sync += done_pending.eq(1)
        return m

    def _receive(self, m, rx_fifo, got, got_last, rr_active, rr_buf, rr_valid, rr_last, wpf):
        fb, vlen = self._mesh.flit_bits, self._tile.vlen
        net, req, resp = self.net_in, self.mem.req, self.mem.resp
        hdr = header_layout()(net.payload.data[:HEADER_BITS])
        flit, last = net.payload.data, net.payload.last
        cnt = Signal(range(128))                           # words written / requested
        got_words = Signal(range(128))                     # read words answered
        w = Signal(range(wpf))                             # word within the flit
        word_addr = Signal(32)
        m.d.comb += word_addr.eq(got.addr + Const(0, 32) + cnt)
        m.d.comb += [req.payload.sel.eq(got.sel), req.payload.addr.eq(Cat(Const(0, 2), word_addr))]
        vec_flits = -(-vlen // fb)
        vbuf = Signal((vec_flits - 1) * fb) if vec_flits > 1 else None
        k = Signal(range(max(2, vec_flits)))

        rx_state = Signal(_Rx)
        with m.If(rx_state == _Rx.HDR):
            m.d.comb += net.ready.eq(1)
            with m.If(net.valid):
                m.d.sync += [got.eq(hdr), got_last.eq(last), cnt.eq(0), got_words.eq(0),
                             w.eq(0), k.eq(0)]
                with m.If(hdr.kind == Kind.MEM_WRITE):
                    with m.If(~last):
                        m.d.sync += rx_state.eq(_Rx.WRITE)
                with m.Elif(hdr.kind == Kind.MEM_READ):
                    m.d.sync += rr_active.eq(1)
                    m.d.sync += rx_state.eq(_Rx.READ)
                with m.Elif(hdr.kind == Kind.START):
                    m.d.comb += self.ctrl.start.eq(1)
                    with m.If(~last):
                        m.d.sync += rx_state.eq(_Rx.DRAIN)
                with m.Elif(hdr.kind == Kind.VEC):
                    with m.If(~last):
                        m.d.sync += rx_state.eq(_Rx.VEC)
                with m.Else():
                    with m.If(~last):
                        m.d.sync += rx_state.eq(_Rx.DRAIN)

        with m.Elif(rx_state == _Rx.WRITE):
            with m.If(cnt < got.length):
                m.d.comb += [req.valid.eq(net.valid), req.payload.we.eq(1),
                             req.payload.wdata.eq(flit.word_select(w, 32))]
                with m.If(net.valid & req.ready):
                    m.d.sync += [cnt.eq(cnt + 1), w.eq(w + 1)]
                    with m.If((w == wpf - 1) | (cnt + 1 == got.length)):
                        m.d.comb += net.ready.eq(1)
                        m.d.sync += w.eq(0)
                        with m.If(last):
                            m.d.sync += rx_state.eq(_Rx.HDR)
            with m.Else():                             # words beyond `length`
                m.d.comb += net.ready.eq(1)
                with m.If(net.valid & last):
                    m.d.sync += rx_state.eq(_Rx.HDR)

        with m.Elif(rx_state == _Rx.READ):
            m.d.comb += [req.valid.eq(cnt < got.length), req.payload.we.eq(0),
                         resp.ready.eq(~rr_valid)]
            with m.If(req.valid & req.ready):
                m.d.sync += cnt.eq(cnt + 1)
            with m.If(resp.valid & resp.ready):
                with m.If(w == 0):
                    m.d.sync += rr_buf.eq(resp.payload)
                with m.Else():
                    m.d.sync += rr_buf.word_select(w, 32).eq(resp.payload)
                m.d.sync += [got_words.eq(got_words + 1), w.eq(w + 1)]
                end = got_words + 1 == got.length
                with m.If((w == wpf - 1) | end):
                    m.d.sync += [rr_valid.eq(1), rr_last.eq(end), w.eq(0)]
            with m.If((got_words == got.length) & ~rr_active):
                m.d.sync += rx_state.eq(_Rx.HDR)
                with m.If(~got_last):
                    m.d.sync += rx_state.eq(_Rx.DRAIN)

        with m.Elif(rx_state == _Rx.VEC):
            if vbuf is None:
                m.d.comb += [rx_fifo.w_data.eq(flit[:vlen]), rx_fifo.w_en.eq(net.valid),
                             net.ready.eq(rx_fifo.w_rdy)]
                with m.If(net.valid & rx_fifo.w_rdy):
                    m.d.sync += rx_state.eq(_Rx.HDR)
                    with m.If(~last):
                        m.d.sync += rx_state.eq(_Rx.DRAIN)
            else:
                with m.If(k < vec_flits - 1):
                    m.d.comb += net.ready.eq(1)
                    with m.If(net.valid):
                        m.d.sync += k.eq(k + 1)
                        for j in range(vec_flits - 1):     # If per chunk: no partial case
                            with m.If(k == j):
                                m.d.sync += vbuf[j * fb:(j + 1) * fb].eq(flit)
                        with m.If(last):               # too short: drop the vector
                            m.d.sync += rx_state.eq(_Rx.HDR)
                with m.Else():
                    m.d.comb += [rx_fifo.w_data.eq(Cat(vbuf, flit)[:vlen]),
                                 rx_fifo.w_en.eq(net.valid), net.ready.eq(rx_fifo.w_rdy)]
                    with m.If(net.valid & rx_fifo.w_rdy):
                        m.d.sync += rx_state.eq(_Rx.HDR)
                        with m.If(~last):
                            m.d.sync += rx_state.eq(_Rx.DRAIN)

        with m.Else():                                     # DRAIN (and unused encodings)
            m.d.comb += net.ready.eq(1)
            with m.If(net.valid & last):
                m.d.sync += rx_state.eq(_Rx.HDR)

    def _transmit(self, m, got, rr_active, rr_buf, rr_valid, rr_last, done_pending):
        fb, vlen = self._mesh.flit_bits, self._tile.vlen
        mesh = self._mesh
        out, tx = self.net_out, self.tx

        # tile id -> (row, col) by multiply-shift; ids outside the mesh are dropped
        dest = tx.payload.dest
        id_bits = max(1, (mesh.n_tiles - 1).bit_length())
        mult, shift = divider_constants(mesh.cols, mesh.n_tiles)
        dest_row, dest_col = Signal(COORD_BITS), Signal(COORD_BITS)
        dest_ok = Signal()
        m.d.comb += [dest_ok.eq(dest < mesh.n_tiles),
                     dest_row.eq((dest[:id_bits] * mult) >> shift),
                     dest_col.eq(dest[:id_bits] - dest_row * mesh.cols)]

        vec_flits = -(-vlen // fb)
        k = Signal(range(max(2, vec_flits)))
        padded = Signal(vec_flits * fb)
        m.d.comb += padded.eq(tx.payload.data)

        tx_state = Signal(_Tx)
        with m.If(tx_state == _Tx.IDLE):
            with m.If(rr_active):
                m.d.sync += tx_state.eq(_Tx.RR_HDR)
            with m.Elif(done_pending):
                m.d.sync += tx_state.eq(_Tx.DONE_HDR)
            with m.Elif(tx.valid & dest_ok):
                m.d.sync += tx_state.eq(_Tx.VEC_HDR)
            with m.Elif(tx.valid):
                m.d.comb += tx.ready.eq(1)             # no such tile: discard

        with m.Elif(tx_state == _Tx.RR_HDR):
            m.d.comb += [out.valid.eq(1), out.payload.last.eq(got.length == 0),
                         out.payload.data.eq(_header(
                             kind=Kind.READ_REPLY, dst_row=got.src_row, dst_col=got.src_col,
                             dst_host=got.src_host, src_row=self.row, src_col=self.col,
                             sel=got.sel, length=got.length, addr=got.addr))]
            with m.If(out.ready):
                m.d.sync += tx_state.eq(_Tx.RR_PAY)
                with m.If(got.length == 0):
                    m.d.sync += rr_active.eq(0)
                    m.d.sync += tx_state.eq(_Tx.IDLE)

        with m.Elif(tx_state == _Tx.RR_PAY):
            m.d.comb += [out.valid.eq(rr_valid), out.payload.data.eq(rr_buf),
                         out.payload.last.eq(rr_last)]
            with m.If(out.valid & out.ready):
                m.d.sync += rr_valid.eq(0)
                with m.If(rr_last):
                    m.d.sync += rr_active.eq(0)
                    m.d.sync += tx_state.eq(_Tx.IDLE)

        with m.Elif(tx_state == _Tx.DONE_HDR):
            m.d.comb += [out.valid.eq(1), out.payload.data.eq(_header(
                kind=Kind.DONE, dst_host=1, src_row=self.row, src_col=self.col, length=1))]
            with m.If(out.ready):
                m.d.sync += tx_state.eq(_Tx.DONE_PAY)

        with m.Elif(tx_state == _Tx.DONE_PAY):
            m.d.comb += [out.valid.eq(1), out.payload.data.eq(self.ctrl.cycles),
                         out.payload.last.eq(1)]
            with m.If(out.ready):
                m.d.sync += done_pending.eq(0)
                m.d.sync += tx_state.eq(_Tx.IDLE)

        with m.Elif(tx_state == _Tx.VEC_HDR):
            m.d.comb += [out.valid.eq(1), out.payload.data.eq(_header(
                kind=Kind.VEC, dst_row=dest_row, dst_col=dest_col, src_row=self.row,
                src_col=self.col, length=vlen // 32))]
            with m.If(out.ready):
                m.d.sync += k.eq(0)
                m.d.sync += tx_state.eq(_Tx.VEC_PAY)

        with m.Else():                                     # VEC_PAY (and unused encodings)
            final = k == vec_flits - 1
            m.d.comb += [out.valid.eq(1), out.payload.data.eq(padded.word_select(k, fb)),
                         out.payload.last.eq(final)]
            with m.If(out.ready):
                m.d.sync += k.eq(k + 1)
                with m.If(final):
                    m.d.comb += tx.ready.eq(1)
                    m.d.sync += tx_state.eq(_Tx.IDLE)
