"""Scoreboard: per-register ready counters and register-file write-port reservations.

A destination issued in cycle t with latency L is written at the end of cycle
t + L - 1 and is readable from t + L: its counter is loaded with L - 1 and counts down;
a register is *busy* while its counter is non-zero (RAW and WAW stall on busy). The
write itself needs a port of its register file in cycle t + L - 1, so the issue logic
also books it: ``res_x[d]`` / ``res_v[d]`` count the writes already booked for d cycles
from now (d >= 1; a write in the issue cycle itself is booked by the issue logic).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .. import isa
from .decode import LAT_BITS

__all__ = ["WRITE_REQ", "max_latency", "Scoreboard"]

#: One issued instruction's destination, as seen by the scoreboard.
WRITE_REQ = data.StructLayout({"go": 1, "wx": 1, "wv": 1, "wa": 1, "rd": 5, "lat": LAT_BITS})


def max_latency(tile) -> int:
    """Largest destination latency of any instruction on ``tile``."""
    return max(isa.latency(s, tile) for s in isa.SPECS if s.latency_attr)


class Scoreboard(wiring.Component):
    """Busy bits of x1..x31, v0..v7, acc0..acc3 and the booked write ports.

    ``writes[j]`` is the destination of issue slot j (``go`` set when it issues; the
    ``w*`` flags already exclude x0). ``clear`` empties everything (START).
    """

    def __init__(self, tile):
        self._t = tile
        self.depth = max_latency(tile)
        iw = tile.issue_width
        super().__init__({
            "clear": In(1),
            "writes": In(data.ArrayLayout(WRITE_REQ, iw)),
            "xbusy": Out(32), "vbusy": Out(tile.vregs), "abusy": Out(tile.accs),
            "res_x": Out(data.ArrayLayout(range(tile.xr_wp + 1), self.depth)),
            "res_v": Out(data.ArrayLayout(range(tile.vr_wp + 1), self.depth)),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        t = self._t
        files = (("x", 32, self.xbusy), ("v", t.vregs, self.vbusy), ("a", t.accs, self.abusy))
        any_busy = 0
        for name, n, busy in files:
            for r in range(1 if name == "x" else 0, n):
                cnt = Signal(range(self.depth), name=f"{name}cnt{r}")
                m.d.comb += busy[r].eq(cnt != 0)
                any_busy = any_busy | (cnt != 0)
                set_ = 0
                lat = 0
                for w in self.writes:
                    hit = w.go & getattr(w, "w" + name) & (w.rd == r)
                    set_ = set_ | hit
                    lat = lat | (w.lat & hit.replicate(LAT_BITS))
                with m.If(self.clear):
                    m.d.sync += cnt.eq(0)
                with m.Elif(set_):
                    m.d.sync += cnt.eq(lat - 1)
                with m.Elif(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
        for name, res, limit in (("x", self.res_x, t.xr_wp), ("v", self.res_v, t.vr_wp)):
            regs = [Signal(range(limit + 1), name=f"res_{name}{d}") for d in range(self.depth)]
            for d in range(self.depth):
                m.d.comb += res[d].eq(regs[d])
                any_busy = any_busy | (regs[d] != 0)
                # next cycle, a write booked now with latency L is L - 2 cycles away
                new = 0
                for w in self.writes:
                    new = new + (w.go & getattr(w, "w" + name) & (w.lat == d + 2))
                upper = regs[d + 1] if d + 1 < self.depth else 0
                with m.If(self.clear):
                    m.d.sync += regs[d].eq(0)
                with m.Else():
                    m.d.sync += regs[d].eq(upper + new)
        m.d.comb += self.idle.eq(~any_busy)
        return m
