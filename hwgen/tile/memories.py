"""SRAM/ROM banks with fixed port lists, and a row-banked memory built from them.

A bank has ports ``ce we addr wdata rdata`` (a ROM bank ``ce addr rdata``). Reads are
synchronous: ``rdata`` shows the row addressed in the last cycle with ``ce`` high and no
write enable, and holds its value otherwise (as a macro's output latch does). Inline
(for amaranth.sim) a bank is :class:`SramBank` / :class:`RomBank`; with ``shared`` it is
an instance of the design's ``l2s_sram_<rows>x<bits>`` / ``l2s_rom_<rows>x<bits>`` wrapper
(:mod:`hwgen.library`), one module per shape, where a flow swaps in SRAM/ROM macros.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, Value, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from ..library import WORD_BITS, rom_instance, sram_instance

__all__ = ["SramBank", "RomBank", "BankedMemory", "WORD_BITS", "memory_bank"]


def _check_geometry(owner: str, depth: int, width: int) -> None:
    if depth < 1:
        raise ValueError(f"{owner} depth must be at least 1, not {depth}")
    if width < WORD_BITS or width % WORD_BITS:
        raise ValueError(f"{owner} width must be a multiple of {WORD_BITS}, not {width}")


class SramBank(wiring.Component):
    """Single-port synchronous SRAM bank of ``depth`` rows of ``width`` bits.

    ``we`` has one bit per 32-bit word; a cycle with ``ce`` and any ``we`` bit writes
    those words, a cycle with ``ce`` and no ``we`` reads the row into ``rdata``.
    """

    def __init__(self, depth: int, width: int, init: Sequence[int] = ()):
        _check_geometry("SramBank", depth, width)
        self.depth, self.width, self._init = depth, width, list(init)
        super().__init__({"ce": In(1), "we": In(width // WORD_BITS),
                          "addr": In(max(1, ceil_log2(depth))), "wdata": In(width),
                          "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = mem = Memory(shape=unsigned(self.width), depth=self.depth,
                                          init=self._init)
        wr = mem.write_port(granularity=WORD_BITS)
        rd = mem.read_port()
        m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata),
                     wr.en.eq(Mux(self.ce, self.we, 0)),
                     rd.addr.eq(self.addr), rd.en.eq(self.ce & ~self.we.any()),
                     self.rdata.eq(rd.data)]
        return m


class RomBank(wiring.Component):
    """Synchronous ROM bank: ``rdata`` <- row ``addr`` at a clock edge with ``ce`` high."""

    def __init__(self, depth: int, width: int, init: Sequence[int] = ()):
        _check_geometry("RomBank", depth, width)
        self.depth, self.width, self._init = depth, width, list(init)
        super().__init__({"ce": In(1), "addr": In(max(1, ceil_log2(depth))),
                          "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = mem = Memory(shape=unsigned(self.width), depth=self.depth,
                                          init=self._init)
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.addr), rd.en.eq(self.ce), self.rdata.eq(rd.data)]
        return m


def memory_bank(m, name: str, depth: int, width: int, *, rom: bool = False, shared: bool = False,
                init: Sequence[int] = (), init_param: str | None = None):
    """Add one bank to ``m`` as submodule ``name``; returns the object carrying its ports.

    Inline: a :class:`SramBank` / :class:`RomBank` with ``init``. Shared: an instance of
    the library wrapper of this shape; a ROM's contents then come from the enclosing
    module's parameter ``init_param`` (an ``INIT_FILE`` set per tile at emission), so
    ``init`` must be empty.
    """
    bank = RomBank(depth, width, init) if rom else SramBank(depth, width, init)
    if not shared:
        m.submodules[name] = bank
        return bank
    if init:
        raise ValueError(f"{name}: a shared memory bank has no inline contents (a ROM reads "
                         "its INIT_FILE; an SRAM is written through the host port)")
    bank._MustUse__used = True                 # only its signature is used (Amaranth's flag)
    iface = bank.signature.create(path=(name,))
    if rom:
        if init_param is None:
            raise ValueError(f"{name}: a shared ROM bank needs init_param")
        m.submodules[name] = rom_instance(depth, width, init_param=init_param, ce=iface.ce,
                                          addr=iface.addr, rdata=iface.rdata)
    else:
        m.submodules[name] = sram_instance(depth, width, ce=iface.ce, we=iface.we,
                                           addr=iface.addr, wdata=iface.wdata,
                                           rdata=iface.rdata)
    return iface


class BankedMemory(wiring.Component):
    """``rows`` rows of ``width`` bits split into banks of at most ``bank_rows`` rows.

    One port (same protocol as :class:`SramBank`); the bank is the high part of ``addr``.
    With ``rom=True`` the banks are :class:`RomBank` and writes are ignored.

    Parameters
    ----------
    rows, width : int
        Geometry of the whole memory.
    bank_rows : int
        Rows per bank, a power of two (the last bank may be shorter).
    init : sequence of int
        Initial row values (ROM contents), row 0 first.
    rom : bool
        Build read-only banks.
    shared : bool
        Banks are instances of the library wrappers (see :func:`memory_bank`).
    init_param : str
        Shared ROM: bank ``b`` reads the file named by parameter ``f"{init_param}{b}"``.
    """

    def __init__(self, rows: int, width: int, bank_rows: int, *, init: Sequence[int] = (),
                 rom: bool = False, shared: bool = False, init_param: str = "INIT_BANK"):
        _check_geometry("BankedMemory", rows, width)
        if bank_rows < 1 or bank_rows & (bank_rows - 1):
            raise ValueError(f"BankedMemory bank_rows must be a power of two, not {bank_rows}")
        if len(init) > rows:
            raise ValueError(f"BankedMemory init has {len(init)} rows, more than {rows}")
        self.rows, self.width, self.rom = rows, width, rom
        self.shared, self.init_param = shared, init_param
        self.bank_rows = min(bank_rows, 1 << ceil_log2(rows))
        self.n_banks = -(-rows // self.bank_rows)
        self._init = list(init)
        super().__init__({"ce": In(1), "we": In(width // WORD_BITS),
                          "addr": In(max(1, ceil_log2(rows))), "wdata": In(width),
                          "rdata": Out(width)})

    def elaborate(self, platform):
        m = Module()
        low = ceil_log2(self.bank_rows)
        bank_sel = self.addr[low:] if len(self.addr) > low else 0
        last_sel = Signal(range(max(2, self.n_banks)))
        with m.If(self.ce & ~self.we.any()):
            m.d.sync += last_sel.eq(bank_sel)
        rdatas = []
        for b in range(self.n_banks):
            depth = min(self.bank_rows, self.rows - b * self.bank_rows)
            init = self._init[b * self.bank_rows:b * self.bank_rows + depth]
            hit = self.ce & (bank_sel == b) if self.n_banks > 1 else self.ce
            bank = memory_bank(m, f"bank{b}", depth, self.width, rom=self.rom,
                               shared=self.shared, init=init, init_param=f"{self.init_param}{b}")
            if not self.rom:
                m.d.comb += [bank.we.eq(self.we), bank.wdata.eq(self.wdata)]
            ce = hit & ~self.we.any() if self.rom else hit
            m.d.comb += [bank.ce.eq(ce), bank.addr.eq(self.addr[:len(bank.addr)])]
            rdatas.append(bank.rdata)
        if self.n_banks == 1:
            m.d.comb += self.rdata.eq(rdatas[0])
            return m
        if self.n_banks <= _MUX_GROUP:
            _case(m, self.rdata, last_sel, rdatas)
            return m
        # Thousands of banks: flat cases of at most _MUX_GROUP banks, then one over the
        # groups. One flat case over all banks keeps Yosys' opt_muxtree busy for tens of
        # minutes (a 7,800-bank ROM); a chain of Muxes nests too deep for Python.
        low_g = ceil_log2(_MUX_GROUP)
        groups = []
        for g in range(0, self.n_banks, _MUX_GROUP):
            out = Signal(self.width, name=f"bank_group{g // _MUX_GROUP}")
            _case(m, out, last_sel[:low_g], rdatas[g:g + _MUX_GROUP])
            groups.append(out)
        _case(m, self.rdata, last_sel[low_g:], groups)
        return m


#: Banks per flat read case of a BankedMemory (a power of two).
_MUX_GROUP = 64


def _case(m: Module, out: Signal, sel: Value, values: Sequence[Value]) -> None:
    """``out = values[sel]`` as one flat case (``out`` keeps 0 for other ``sel``)."""
    with m.Switch(sel):
        for i, v in enumerate(values):
            with m.Case(i):
                m.d.comb += out.eq(v)
