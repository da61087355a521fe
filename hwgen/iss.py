"""Instruction-set simulator of one tile: the golden model the RTL is checked against.

Architectural state (x/v/acc registers, DMEM, WMEM, the WMEM stream pointer) with the
arithmetic of :mod:`hwgen.golden`, so results are bit-exact with the RTL. Two ways to run:

* :meth:`TileISS.run` executes instruction by instruction (``csrr cycle`` then returns
  the number of instructions executed so far);
* :meth:`TileISS.run_timed` / :meth:`TileISS.tick` model the core cycle by cycle with
  exactly the RTL's fetch, issue-queue, scoreboard, write-port and structural rules
  (``docs/isa.md``, "Timing"), so its cycle count equals ``Core``'s ``ctrl.cycles``.

``vsend`` calls ``send(dest, vector_bytes, cycle)``; received vectors are appended to
:attr:`TileISS.rx` as ``(arrival_cycle, vector_bytes)``. :class:`Network` connects several
simulators with a fixed delivery latency. Program errors (illegal or misaligned access,
running off IMEM) raise :class:`IssError`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import golden as g
from ._iss_timing import _Timing
from .isa import (
    CSR_CYCLE,
    CSR_MHARTID,
    AluOp,
    BranchOp,
    Instr,
    SysOp,
    Unit,
    ValuOp,
    VmacOp,
    decode,
)

__all__ = ["IssError", "RunResult", "TileISS", "Network", "LOOPBACK_LATENCY"]

M32 = 0xFFFFFFFF
#: Cycles from a vsend's issue until the vector can be popped by vrecv when tx is looped
#: straight into rx through one register stage (tx FIFO -> rx FIFO), as in the RTL tests.
LOOPBACK_LATENCY = 2


class IssError(RuntimeError):
    """A program error: illegal instruction, misaligned or out-of-range access."""


@dataclass(frozen=True)
class RunResult:
    """Outcome of a run: ``cycles`` (None in untimed runs), instructions per unit."""

    halted: bool
    instructions: int
    unit_counts: dict[str, int]
    cycles: int | None = None


def _sx(v: int) -> int:
    return v - (1 << 32) if v & 0x80000000 else v


def _alu(op: AluOp, a: int, b: int, pc: int) -> int:
    s = b & 31
    return {AluOp.ADD: a + b, AluOp.SUB: a - b, AluOp.SLL: a << s,
            AluOp.SLT: int(_sx(a) < _sx(b)), AluOp.SLTU: int(a < b), AluOp.XOR: a ^ b,
            AluOp.SRL: a >> s, AluOp.SRA: _sx(a) >> s, AluOp.OR: a | b, AluOp.AND: a & b,
            AluOp.LUI: b, AluOp.AUIPC: pc + b}[op] & M32


def _taken(op: BranchOp, a: int, b: int) -> bool:
    return {BranchOp.BEQ: a == b, BranchOp.BNE: a != b, BranchOp.BLT: _sx(a) < _sx(b),
            BranchOp.BGE: _sx(a) >= _sx(b), BranchOp.BLTU: a < b, BranchOp.BGEU: a >= b,
            BranchOp.JAL: True, BranchOp.JALR: True}[op]


class TileISS:
    """One tile. ``program``: IMEM words; ``dmem``/``wmem``: initial contents (bytes,
    zero-padded); ``send``: vsend callback ``(dest, vector_bytes, cycle)``."""

    def __init__(self, tile, program: Sequence[int], *, dmem: bytes = b"", wmem: bytes = b"",
                 tile_id: int = 0, send: Callable[[int, bytes, int], None] | None = None):
        self.tile = tile
        if len(program) > tile.imem_words:
            raise ValueError(f"program has {len(program)} words, IMEM holds {tile.imem_words}")
        self.imem = [int(w) & M32 for w in program]
        self.dmem = np.zeros(tile.dmem_kib * 1024, np.uint8)
        self.wmem = np.zeros(tile.wmem_kib * 1024, np.uint8)
        for name, init, mem in (("dmem", dmem, self.dmem), ("wmem", wmem, self.wmem)):
            if len(init) > len(mem):
                raise ValueError(f"{name} init has {len(init)} bytes, more than {len(mem)}")
            mem[:len(init)] = np.frombuffer(bytes(init), np.uint8)
        self.x = [0] * 32
        self.v = np.zeros((tile.vregs, tile.vlen // 8), np.uint8)
        self.acc = np.zeros((tile.accs, tile.lanes_int8), np.uint32)
        self.wptr = 0
        self.pc = 0
        self.tile_id = tile_id
        self.send = send
        self.rx: deque[tuple[int, bytes]] = deque()
        self.counts: Counter[str] = Counter()
        self.retired = 0
        self.halted = False
        self.taken = False            # the last executed branch/jump was taken
        self._decoded: dict[int, Instr] = {}
        self._timing: _Timing | None = None

    # --- functional execution -----------------------------------------------------
    def instr_at(self, pc: int) -> Instr:
        """Decoded instruction at byte address ``pc``."""
        ins = self._decoded.get(pc)
        if ins is None:
            word_index = pc // 4
            if pc % 4 or not 0 <= word_index < len(self.imem):
                raise IssError(f"pc {pc:#x} is outside the program ({len(self.imem)} words)")
            try:
                ins = decode(self.imem[word_index])
            except ValueError as exc:
                raise IssError(f"pc {pc:#x}: {exc}") from None
            self._decoded[pc] = ins
        return ins

    def _mem_index(self, addr: int, size: int, what: str) -> int:
        if addr % size or addr + size > len(self.dmem):
            raise IssError(f"pc {self.pc:#x}: {what} address {addr:#x} is misaligned or outside "
                           f"DMEM ({len(self.dmem)} bytes)")
        return addr

    def _lanes(self, reg: int, dtype) -> np.ndarray:
        return self.v[reg].view(dtype)

    def _elem(self, ins: Instr, reg: int, width: int) -> int:
        lanes = self.tile.vlen // width
        if ins.imm >= lanes:
            raise IssError(f"pc {self.pc:#x}: {ins.name} element {ins.imm} >= {lanes} lanes")
        return int(self._lanes(reg, np.int8 if width == 8 else np.uint16)[ins.imm])

    def execute(self, ins: Instr, cycle: int | None = None) -> int | None:
        """Execute ``ins`` at ``self.pc``; return the next pc, or None for ``ecall``."""
        spec, x, pc = ins.spec, self.x, self.pc
        op, unit = spec.op, spec.unit
        a, b = x[ins.rs1], x[ins.rs2]
        result = None
        nxt = pc + 4
        self.counts[unit.name] += 1
        self.retired += 1
        self.taken = False
        if unit is Unit.ALU:
            operand = {"U": (ins.imm << 12) & M32, "I": ins.imm & M32,
                       "IS": ins.imm}.get(spec.fmt, b)
            result = _alu(op, a, operand, pc)
        elif unit is Unit.BRANCH:
            self.taken = _taken(op, a, b)
            if self.taken:
                nxt = ((a + ins.imm) & M32 & ~1) if op is BranchOp.JALR else (pc + ins.imm) & M32
                if nxt % 4:
                    raise IssError(f"pc {pc:#x}: jump target {nxt:#x} is not word aligned")
            result = (pc + 4) & M32 if spec.dst else None
        elif unit is Unit.LSU:
            addr = self._mem_index((a + ins.imm) & M32, 4, spec.name)
            if op.name == "LOAD":
                result = int(self.dmem[addr:addr + 4].view("<u4")[0])
            else:
                self.dmem[addr:addr + 4] = np.frombuffer(b.to_bytes(4, "little"), np.uint8)
        elif unit is Unit.SYS:
            if op is SysOp.ECALL:
                return None
            result = {CSR_CYCLE: self.retired - 1 if cycle is None else cycle,
                      CSR_MHARTID: self.tile_id}[ins.imm] & M32
        elif unit is Unit.VLSU:
            row = self.tile.vlen // 8
            if op.name == "WLOAD":
                self.v[ins.rd] = self._wmem_row(np.uint8)
                return nxt
            addr = self._mem_index((a + ins.imm) & M32, row, spec.name)
            if op.name == "LOAD":
                self.v[ins.rd] = self.dmem[addr:addr + row]
            else:
                self.dmem[addr:addr + row] = self.v[ins.rs2]
        elif unit is Unit.VMAC:
            result = self._vmac(ins, op, a)
        elif unit is Unit.VALU:
            result = self._valu(ins, op, a)
        elif unit is Unit.VNET:
            if op.name == "SEND":
                if self.send is None:
                    raise IssError(f"pc {pc:#x}: vsend with no network attached")
                self.send(a & 0xFFFF, self.v[ins.rs2].tobytes(), cycle)
            else:
                self.v[ins.rd] = np.frombuffer(self.rx.popleft()[1], np.uint8)
        if result is not None and ins.rd:
            x[ins.rd] = result & M32
        return nxt

    def _wmem_row(self, dtype) -> np.ndarray:
        """WMEM row ``wptr`` (then ``wptr`` += 1), for vmacw and vldw."""
        t, row = self.tile, self.tile.vlen // 8
        if self.wptr >= t.wmem_rows:
            raise IssError(f"pc {self.pc:#x}: WMEM row {self.wptr} >= {t.wmem_rows} rows")
        out = self.wmem[self.wptr * row:(self.wptr + 1) * row].copy().view(dtype)
        self.wptr += 1
        return out

    def _vmac(self, ins: Instr, op: VmacOp, xs: int) -> int | None:
        t, acc = self.tile, self.acc
        b8 = ins.spec.bwidth == 8
        lanes = t.lanes_int8 if b8 else t.lanes_fp16
        dtype = np.int8 if b8 else np.uint16
        if op is VmacOp.WSET:
            self.wptr = xs
        elif op in (VmacOp.MACW, VmacOp.MACX, VmacOp.MACV):
            if op is VmacOp.MACW:
                va = self._wmem_row(dtype)
            else:
                va = self._lanes(ins.rs1, dtype)
            vb = (self._lanes(ins.rs2, dtype) if op is VmacOp.MACV
                  else self._elem(ins, ins.rs2, 8 if b8 else 16))
            old = acc[ins.rd, :lanes]
            acc[ins.rd, :lanes] = (g.int8_mac(old.view(np.int32), va, vb).view(np.uint32) if b8
                                   else g.fp16_mac(old, va, vb))
        elif op is VmacOp.ZERO:
            acc[ins.rd] = 0
        elif op is VmacOp.RED:
            src = acc[ins.rs2, :lanes]
            return int(g.reduce_tree_int32(src.view(np.int32)).astype(np.uint32) if b8
                       else g.reduce_tree_fp32(src))
        elif op is VmacOp.CVT:
            src = acc[ins.rs2, :lanes]
            out = (g.int32_to_int8_sat(src.view(np.int32), xs & 31) if b8 else g.fp32_to_fp16(src))
            self.v[ins.rd] = np.frombuffer(out.tobytes(), np.uint8)
        return None

    def _valu(self, ins: Instr, op: ValuOp, xs: int) -> int | None:
        if op is ValuOp.MVX:
            return self._elem(ins, ins.rs1, 16)
        if op is ValuOp.MVS:
            self._elem(ins, ins.rd, 16)            # range check
            self._lanes(ins.rd, np.uint16)[ins.imm] = xs & 0xFFFF
            return None
        vb = self._lanes(ins.rs2, np.uint16)
        if op in (ValuOp.ADDS, ValuOp.MULS):        # va sits in rs2, the scalar in x[rs1]
            out = (g.vadd_hs if op is ValuOp.ADDS else g.vmul_hs)(vb, xs & 0xFFFF)
        else:
            va = self._lanes(ins.rs1, np.uint16)
            out = {ValuOp.ADD: g.vadd_h, ValuOp.SUB: g.vsub_h, ValuOp.MUL: g.vmul_h,
                   ValuOp.MAX: g.vmax_h}[op](va, vb) if op in (
                ValuOp.ADD, ValuOp.SUB, ValuOp.MUL, ValuOp.MAX) else {
                ValuOp.EXP: g.vexp_h, ValuOp.RCP: g.vrcp_h, ValuOp.RSQRT: g.vrsqrt_h}[op](va)
        self.v[ins.rd] = np.frombuffer(out.astype(np.uint16).tobytes(), np.uint8)
        return None

    def step(self) -> bool:
        """Execute one instruction; False once halted. A vrecv with nothing received
        raises :class:`IssError` (use :class:`Network` to run communicating tiles)."""
        if self.halted:
            return False
        ins = self.instr_at(self.pc)
        if ins.spec.unit is Unit.VNET and ins.spec.op.name == "RECV" and not self.rx:
            raise IssError(f"pc {self.pc:#x}: vrecv with no vector received")
        nxt = self.execute(ins)
        if nxt is None:
            self.halted = True
            return False
        self.pc = nxt
        return True

    def run(self, max_steps: int = 1_000_000) -> RunResult:
        """Run untimed until ``ecall`` (IssError after ``max_steps`` instructions)."""
        for _ in range(max_steps):
            if not self.step():
                return self.result()
        raise IssError(f"no ecall within {max_steps} instructions")

    def result(self) -> RunResult:
        cycles = self._timing.cycles if self._timing else None
        return RunResult(self.halted, self.retired, dict(self.counts), cycles)

    # --- cycle-accurate mode -------------------------------------------------------
    def tick(self) -> bool:
        """Advance one clock cycle of the core model; False once halted."""
        if self._timing is None:
            self._timing = _Timing(self)
        return self._timing.cycle()

    def run_timed(self, max_cycles: int = 1_000_000) -> RunResult:
        """Run cycle by cycle until ``ecall``; ``cycles`` equals the RTL's ``ctrl.cycles``."""
        for _ in range(max_cycles):
            if not self.tick():
                return self.result()
        raise IssError(f"no ecall within {max_cycles} cycles")


class Network:
    """Delivers vsend vectors between simulators: arrival = send cycle + ``latency``."""

    def __init__(self, tiles: Sequence[TileISS], latency: int = LOOPBACK_LATENCY):
        self.tiles, self.latency = list(tiles), latency
        for t in self.tiles:
            t.send = self._deliver

    def _deliver(self, dest: int, vector: bytes, cycle: int | None) -> None:
        if not 0 <= dest < len(self.tiles):
            raise IssError(f"vsend to tile {dest}, but the network has {len(self.tiles)} tiles")
        self.tiles[dest].rx.append(((cycle or 0) + self.latency, vector))

    def run_timed(self, max_cycles: int = 1_000_000) -> list[RunResult]:
        """Tick all tiles in lock step until every one has halted."""
        for _ in range(max_cycles):
            if not any([t.tick() for t in self.tiles]):
                return [t.result() for t in self.tiles]
        raise IssError(f"tiles still running after {max_cycles} cycles")

