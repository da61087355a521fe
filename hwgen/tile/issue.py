"""In-order issue of up to ``issue_width`` instructions per cycle from the queue head.

Slot j issues only if slots 0..j-1 issue and none of the contract's stop conditions
holds for it (``docs/isa.md`` lists them with the cycle-exact rules):

* data hazard: a source or destination busy in the scoreboard or written by an earlier
  slot of the group (an in-place VMAC accumulate never waits for its accumulator);
* structural: ``scalar_issue_per_cycle`` scalar ops, ``vector_issue_per_cycle`` vector
  ops, one op per unit other than the ALUs, one DMEM access (lw/sw/vld/vst share the
  port), one WMEM stream-pointer op (wset/vmacw/vldw), a free write port of the
  destination's register file in its write cycle;
* a branch or jump ends the group; ``ecall`` (or an illegal word) issues alone from
  slot 0 once the machine is drained; ``vsend`` needs room in the tx FIFO, ``vrecv`` a
  received vector.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..isa import SysOp, Unit, VnetOp
from ..library import decoder_module_name, place
from .decode import DECODED, LAT_BITS, Decoder
from .frontend import SLOT
from .pipe import pick
from .scoreboard import WRITE_REQ, max_latency

__all__ = ["dispatch_layout", "Issue"]

_SINGLE_UNITS = (Unit.BRANCH, Unit.LSU, Unit.SYS, Unit.VLSU, Unit.VMAC, Unit.VALU, Unit.VNET)


def dispatch_layout(pc_bits: int) -> data.StructLayout:
    """One instruction handed to a unit: valid, decoded fields and its word pc."""
    return data.StructLayout({"valid": 1, "d": DECODED, "pc": pc_bits})


def _or(terms):
    out = 0
    for t in terms:
        out = out | t
    return out


def _sum(terms):
    out = 0
    for t in terms:
        out = out + t
    return out


class Issue(wiring.Component):
    """Decoders, hazard/structural checks and per-unit dispatch of one cycle's group.

    With ``shared`` the per-slot decoders are instances of one :mod:`hwgen.library` module."""

    def __init__(self, tile, pc_bits: int, *, shared: bool = False):
        self._t, self._shared = tile, shared
        iw, depth = tile.issue_width, max_latency(tile)
        self.n_alu = tile.scalar_issue_per_cycle
        disp = dispatch_layout(pc_bits)
        super().__init__({
            "run": In(1), "rx_valid": In(1), "tx_ok": In(1), "tx_empty": In(1),
            "slots": In(data.ArrayLayout(SLOT, iw)), "head_pc": In(pc_bits),
            "xbusy": In(32), "vbusy": In(tile.vregs), "abusy": In(tile.accs), "sb_idle": In(1),
            "res_x": In(data.ArrayLayout(range(tile.xr_wp + 1), depth)),
            "res_v": In(data.ArrayLayout(range(tile.vr_wp + 1), depth)),
            "issued": Out(range(iw + 1)), "halt": Out(1),
            "writes": Out(data.ArrayLayout(WRITE_REQ, iw)),
            "alu": Out(data.ArrayLayout(disp, self.n_alu)),
            **{u.name.lower(): Out(disp) for u in _SINGLE_UNITS},
        })

    def elaborate(self, platform):
        m = Module()
        go_prev, slots = self.run, []
        for j in range(self._t.issue_width):
            dec = place(m, f"dec{j}", Decoder(self._t), self._shared,
                        module=decoder_module_name(self._t))
            m.d.comb += dec.insn.eq(self.slots[j].insn)
            f = self._classify(m, j, dec.out)
            ok = ~self._hazard(f, slots) & self._structural_ok(j, f, slots)
            f["go"] = go = Signal(name=f"go{j}")
            m.d.comb += go.eq(go_prev & self.slots[j].valid & ok)
            go_prev = go
            f["alu_before"] = _sum(p[Unit.ALU] for p in slots)
            slots.append(f)
            d, w = f["d"], self.writes[j]
            m.d.comb += [w.go.eq(go), w.wx.eq(f["wx"]), w.wv.eq(d.wv), w.wa.eq(d.wa),
                         w.rd.eq(d.rd), w.lat.eq(d.lat)]
        m.d.comb += [self.issued.eq(_sum(f["go"] for f in slots)),
                     self.halt.eq(slots[0]["go"] & slots[0]["halt"])]
        for u in _SINGLE_UNITS:
            self._dispatch(m, getattr(self, u.name.lower()), slots,
                           [f["go"] & f[u] for f in slots])
        for a in range(self.n_alu):
            self._dispatch(m, self.alu[a], slots,
                           [f["go"] & f[Unit.ALU] & (f["alu_before"] == a) for f in slots])
        return m

    @staticmethod
    def _classify(m, j, d) -> dict:
        """Per-slot flags: effective x write, halt, scalar/vector class, unit one-hots."""
        f = {"d": d, "wx": Signal(name=f"wx{j}"), "halt": Signal(name=f"halt{j}"),
             "wv": d.wv, "wa": d.wa}
        m.d.comb += [f["wx"].eq(d.wx & (d.rd != 0)),
                     f["halt"].eq(~d.legal | ((d.unit == Unit.SYS) & (d.op == SysOp.ECALL)))]
        live = d.legal & ~f["halt"]
        f["scalar"] = live & (d.unit.as_value() < Unit.VLSU.value)
        f["vector"] = live & (d.unit.as_value() >= Unit.VLSU.value)
        f["dmem"] = live & d.dmem
        f["wptr"] = live & d.wptr
        for u in Unit:
            f[u] = live & (d.unit == u)
        return f

    def _hazard(self, f, prev):
        """RAW/WAW against the scoreboard and against earlier slots of the group."""
        d = f["d"]

        def earlier(flag, reg):
            return _or(p[flag] & (p["d"].rd == reg) for p in prev)

        xb, vb, ab = self.xbusy.bit_select, self.vbusy.bit_select, self.abusy.bit_select
        return ((d.rx1 & (xb(d.rs1, 1) | earlier("wx", d.rs1)))
                | (d.rx2 & (xb(d.rs2, 1) | earlier("wx", d.rs2)))
                | (f["wx"] & (xb(d.rd, 1) | earlier("wx", d.rd)))
                | (d.rv1 & (vb(d.rs1[:3], 1) | earlier("wv", d.rs1)))
                | (d.rv2 & (vb(d.rs2[:3], 1) | earlier("wv", d.rs2)))
                | (d.rvd & (vb(d.rd[:3], 1) | earlier("wv", d.rd)))
                | (d.wv & (vb(d.rd[:3], 1) | earlier("wv", d.rd)))
                | (d.ra2 & (ab(d.rs2[:2], 1) | earlier("wa", d.rs2)))
                | (d.wa & ~d.accum & ab(d.rd[:2], 1)))

    def _structural_ok(self, j, f, prev):
        """Write ports in the write cycle, class/unit limits, group enders, VNET, halt."""
        t, d = self._t, f["d"]
        res_x = [self.res_x[i] for i in range(len(self.res_x))]
        res_v = [self.res_v[i] for i in range(len(self.res_v))]
        write_cycle = (d.lat - 1)[:LAT_BITS]
        same_x = _sum(p["wx"] & (p["d"].lat == d.lat) for p in prev)
        same_v = _sum(p["wv"] & (p["d"].lat == d.lat) for p in prev)
        ok = ((~f["wx"] | (pick(res_x, write_cycle) + same_x < t.xr_wp))
              & (~d.wv | (pick(res_v, write_cycle) + same_v < t.vr_wp)))
        ok &= ~f["scalar"] | (_sum(p["scalar"] for p in prev) < t.scalar_issue_per_cycle)
        ok &= ~f["vector"] | (_sum(p["vector"] for p in prev) < t.vector_issue_per_cycle)
        for flag in ("dmem", "wptr", *_SINGLE_UNITS):
            ok &= ~f[flag] | ~_or(p[flag] for p in prev)
        ok &= ~_or(p[Unit.BRANCH] | p["halt"] for p in prev)     # they end the group
        ok &= ~(f[Unit.VNET] & (d.op == VnetOp.SEND)) | self.tx_ok
        ok &= ~(f[Unit.VNET] & (d.op == VnetOp.RECV)) | self.rx_valid
        if j == 0:
            return ok & (~f["halt"] | (self.sb_idle & self.tx_empty))
        return ok & ~f["halt"]

    def _dispatch(self, m, port, slots, sels):
        """``port`` <- the decoded slot selected by the one-hot ``sels`` (and its pc)."""
        payload = _or(Mux(sel, Cat(f["d"].as_value(), self.head_pc + j), 0)
                      for j, (f, sel) in enumerate(zip(slots, sels, strict=True)))
        m.d.comb += [port.valid.eq(_or(sels)), Cat(port.d.as_value(), port.pc).eq(payload)]
