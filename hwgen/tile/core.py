"""The tile core: front end, issue/scoreboard, scalar and vector units, memories.

``Core(tile, wmem_init=..., imem_init=...)`` has exactly the signature agreed with the
network interface (:mod:`hwgen.tile.signature`, /work/core_ni_interface.md). Everything
is sized from :class:`explorer.design.TileConfig`; the timing rules are in
``docs/isa.md`` and mirrored cycle for cycle by :class:`hwgen.iss.TileISS`.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring

from explorer.contract import SRAM_BANK_ROWS
from explorer.design import TileConfig

from ..isa import MemOp
from .frontend import FRONTEND_PENALTY_CYCLES, Frontend
from .hostport import HostPort
from .issue import Issue
from .memories import BankedMemory
from .regfile import RegFile
from .scalar import ScalarUnits
from .scoreboard import Scoreboard
from .signature import core_signature
from .valu import ValuUnit
from .vlsu import LoadStore
from .vmac import VmacUnit
from .vnet import VnetUnit

__all__ = ["Core", "WMEM_INIT_PARAM"]

#: Shared build: WMEM ROM bank b reads the file named by tile parameter WMEM_INIT_BANK<b>.
WMEM_INIT_PARAM = "WMEM_INIT_BANK"

#: x-register read ports besides two per ALU: branch rs1/rs2, lsu rs1/rs2, and rs1 of
#: VLSU (address), VMAC (wset / vcvt.b shift), VALU (scalar), VNET (destination).
X_READS_FIXED = 8
#: x-register result sources besides one per ALU: link, CSR, lw, vred, vmv.x.
X_SOURCES_FIXED = 5
#: v-register read ports (vst, vmac va/vb, valu va/vb/vd, vsend) and result sources
#: (vld/vldw, vcvt, VALU, vrecv).
V_READS, V_SOURCES = 7, 4


def _connect_port(m, run, core_side, host_side, memory):
    """Memory request from the core while running, from the host port otherwise."""
    for name in ("ce", "we", "addr", "wdata"):
        m.d.comb += getattr(memory, name).eq(Mux(run, getattr(core_side, name),
                                                 getattr(host_side, name)))
    m.d.comb += [host_side.rdata.eq(memory.rdata), core_side.rdata.eq(memory.rdata)]


class Core(wiring.Component):
    """One programmable vector tile core.

    Parameters
    ----------
    tile : TileConfig
        The tile class; every width, count and latency is read from it.
    wmem_init : sequence of int, optional
        WMEM rows (``wmem_port_bits`` bits each, row 0 first): the ROM contents when
        ``tile.wmem_kind == "rom"``, the power-on contents of an SRAM WMEM otherwise.
    imem_init : sequence of int, optional
        Power-on IMEM words (programs are normally loaded through ``mem``).
    shared : bool
        Build for emission: arithmetic units, decoders and memory banks are instances of
        the shared modules of :mod:`hwgen.library` (one Verilog module each per design);
        amaranth.sim needs the default, inline build. A shared ROM WMEM reads its
        contents from the files named by the parameters ``WMEM_INIT_BANK<b>`` that
        emission adds to the tile (so ``wmem_init`` and ``imem_init`` must be empty).

    Members: see :func:`hwgen.tile.signature.core_signature`. For tests the
    architectural state is reachable as ``xrf.regs``, ``vrf.regs`` and ``vmac.accs``.
    """

    def __init__(self, tile: TileConfig, *, wmem_init: Sequence[int] | None = None,
                 imem_init: Sequence[int] | None = None, shared: bool = False):
        if not isinstance(tile, TileConfig):
            raise TypeError(f"tile must be a TileConfig, not {tile!r}")
        if tile.branch_penalty_cycles != FRONTEND_PENALTY_CYCLES:
            raise ValueError(f"TileConfig.branch_penalty_cycles = {tile.branch_penalty_cycles}, "
                             f"but the front end redirects in {FRONTEND_PENALTY_CYCLES}")
        if wmem_init and not tile.wmem_rows:
            raise ValueError("wmem_init given but the tile has no WMEM (wmem_kib = 0)")
        self.tile, self.shared = tile, shared
        super().__init__(core_signature(tile.vlen))
        self.frontend = Frontend(tile, imem_init or (), shared=shared)
        pcb = self.frontend.pc_bits
        n_alu = tile.scalar_issue_per_cycle
        self.issue = Issue(tile, pcb, shared=shared)
        self.scoreboard = Scoreboard(tile)
        self.xrf = RegFile(32, 32, n_read=2 * n_alu + X_READS_FIXED,
                           n_src=n_alu + X_SOURCES_FIXED, n_ports=tile.xr_wp, zero_reg=True)
        self.vrf = RegFile(tile.vregs, tile.vlen, n_read=V_READS, n_src=V_SOURCES,
                           n_ports=tile.vr_wp)
        self.scalar = ScalarUnits(tile, pcb)
        self.loadstore = LoadStore(tile, pcb)
        self.vmac = VmacUnit(tile, pcb, shared=shared)
        self.valu = ValuUnit(tile, pcb, shared=shared)
        self.vnet = VnetUnit(tile, pcb)
        self.host = HostPort(tile, pcb)
        bank = SRAM_BANK_ROWS
        self.dmem = BankedMemory(tile.dmem_rows, tile.dmem_port_bits, bank, shared=shared)
        self.wmem = (BankedMemory(tile.wmem_rows, tile.wmem_port_bits, bank,
                                  init=list(wmem_init or ()), rom=tile.wmem_kind == "rom",
                                  shared=shared, init_param=WMEM_INIT_PARAM)
                     if tile.wmem_rows else None)

    def elaborate(self, platform):
        m = Module()
        for name in ("frontend", "issue", "scoreboard", "xrf", "vrf", "scalar", "loadstore",
                     "vmac", "valu", "vnet", "host", "dmem", "wmem"):
            if getattr(self, name) is not None:
                m.submodules[name] = getattr(self, name)
        run, start = self._control(m)
        fe, iss, sb = self.frontend, self.issue, self.scoreboard
        m.d.comb += [fe.run.eq(run), fe.start.eq(start), fe.issued.eq(iss.issued),
                     fe.redirect.eq(self.scalar.redirect), fe.target.eq(self.scalar.target),
                     iss.slots.eq(fe.slots), iss.head_pc.eq(fe.head_pc), iss.run.eq(run),
                     iss.xbusy.eq(sb.xbusy), iss.vbusy.eq(sb.vbusy), iss.abusy.eq(sb.abusy),
                     iss.res_x.eq(sb.res_x), iss.res_v.eq(sb.res_v), iss.sb_idle.eq(sb.idle),
                     iss.rx_valid.eq(self.rx.valid), iss.tx_ok.eq(self.vnet.tx_ok),
                     iss.tx_empty.eq(self.vnet.tx_empty),
                     sb.writes.eq(iss.writes), sb.clear.eq(start)]
        self._operands(m)
        self._writebacks(m)
        # memories and the host port
        wiring.connect(m, wiring.flipped(self.mem), self.host.mem)
        wiring.connect(m, self.host.imem, fe.host)
        m.d.comb += self.host.running.eq(run)
        _connect_port(m, run, self.loadstore.dmem, self.host.dmem, self.dmem)
        if self.wmem is not None:
            _connect_port(m, run, self.vmac.wmem, self.host.wmem, self.wmem)
            m.d.comb += self.loadstore.wmem_rdata.eq(self.wmem.rdata)
        m.d.comb += self.vmac.vldw.eq(self.issue.vlsu.valid
                                      & (self.issue.vlsu.d.op == MemOp.WLOAD))
        # network
        wiring.connect(m, wiring.flipped(self.tx), self.vnet.tx)
        wiring.connect(m, wiring.flipped(self.rx), self.vnet.rx)
        return m

    def _control(self, m):
        """START/DONE, the run flag and the cycle counter (0 in the first running cycle)."""
        running, counter, cycles, done = Signal(), Signal(32), Signal(32), Signal()
        start = self.ctrl.start
        with m.If(start):
            m.d.sync += [running.eq(1), counter.eq(0), done.eq(0)]
        with m.Elif(running):
            m.d.sync += [counter.eq(counter + 1), done.eq(0)]
            with m.If(self.issue.halt):
                m.d.sync += [running.eq(0), done.eq(1), cycles.eq(counter + 1)]
        with m.Else():
            m.d.sync += done.eq(0)
        m.d.comb += [self.ctrl.running.eq(running), self.ctrl.done.eq(done),
                     self.ctrl.cycles.eq(cycles), self.scalar.cycle.eq(counter),
                     self.scalar.tile_id.eq(self.tile_id)]
        for unit in (self.scalar, self.loadstore, self.vmac, self.valu, self.vnet):
            m.d.comb += unit.clear.eq(start)
        return running, start

    def _operands(self, m):
        """Route dispatches to units and their register reads to the register files."""
        iss, xrf, vrf = self.issue, self.xrf, self.vrf
        sc, ls, vm, va, vn = self.scalar, self.loadstore, self.vmac, self.valu, self.vnet
        x_reads = []
        for i in range(len(iss.alu)):
            m.d.comb += sc.alu[i].eq(iss.alu[i])
            x_reads += [(iss.alu[i].d.rs1, sc.alu_a[i]), (iss.alu[i].d.rs2, sc.alu_b[i])]
        m.d.comb += [sc.br.eq(iss.branch), sc.sys.eq(iss.sys), ls.lsu.eq(iss.lsu),
                     ls.vlsu.eq(iss.vlsu), vm.vmac.eq(iss.vmac), va.valu.eq(iss.valu),
                     vn.vnet.eq(iss.vnet)]
        x_reads += [(iss.branch.d.rs1, sc.br_a), (iss.branch.d.rs2, sc.br_b),
                    (iss.lsu.d.rs1, ls.lsu_a), (iss.lsu.d.rs2, ls.lsu_b),
                    (iss.vlsu.d.rs1, ls.vlsu_a), (iss.vmac.d.rs1, vm.xs),
                    (iss.valu.d.rs1, va.xs), (iss.vnet.d.rs1, vn.dest)]
        v_reads = [(iss.vlsu.d.rs2, ls.vlsu_v), (iss.vmac.d.rs1, vm.va), (iss.vmac.d.rs2, vm.vb),
                   (iss.valu.d.rs1, va.va), (iss.valu.d.rs2, va.vb), (iss.valu.d.rd, va.vd_old),
                   (iss.vnet.d.rs2, vn.vs)]
        for rf, reads in ((xrf, x_reads), (vrf, v_reads)):
            for k, (addr, dest) in enumerate(reads):
                m.d.comb += [rf.raddr[k].eq(addr), dest.eq(rf.rdata[k])]

    def _writebacks(self, m):
        sc = self.scalar
        x_srcs = [*sc.alu_w, sc.br_w, sc.sys_w, self.loadstore.x_w, self.vmac.x_w, self.valu.x_w]
        v_srcs = [self.loadstore.v_w, self.vmac.v_w, self.valu.v_w, self.vnet.v_w]
        for rf, srcs in ((self.xrf, x_srcs), (self.vrf, v_srcs)):
            for k, src in enumerate(srcs):
                m.d.comb += rf.wsrc[k].eq(src)
