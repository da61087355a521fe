"""Scalar ALUs (one per scalar issue slot), the branch unit and the CSR/system unit.

All three work in the issue cycle on operands read from the x register file at issue;
their results are written ``alu_latency`` - 1 cycles later (at the end of the issue cycle
for the contract's 1). A taken branch or jump raises ``redirect`` in the issue cycle.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..isa import CSR_CYCLE, CSR_MHARTID, AluOp, BranchOp
from .issue import dispatch_layout
from .pipe import delay, pad_cycles
from .regfile import write_layout

__all__ = ["alu_result", "ScalarUnits"]

XW = write_layout(5, 32)


def alu_result(op, a, b, pc_bytes):
    """RV32I ALU: ``op`` (:class:`AluOp`), operands ``a`` (rs1) and ``b`` (rs2 or imm)."""
    sh = b[:5]
    table = {
        AluOp.ADD: a + b, AluOp.SUB: a - b, AluOp.SLL: a << sh,
        AluOp.SLT: a.as_signed() < b.as_signed(), AluOp.SLTU: a < b, AluOp.XOR: a ^ b,
        AluOp.SRL: a >> sh, AluOp.SRA: a.as_signed() >> sh, AluOp.OR: a | b,
        AluOp.AND: a & b, AluOp.LUI: b, AluOp.AUIPC: pc_bytes + b,
    }
    out = 0
    for code, value in table.items():
        out = Mux(op == code.value, value[:32], out)
    return out


class ScalarUnits(wiring.Component):
    """``n_alu`` ALUs, the branch unit and the CSR unit, with their x-register writes.

    Operands ``*_a`` / ``*_b`` are x[rs1] / x[rs2] of the matching dispatch.
    """

    def __init__(self, tile, pc_bits: int):
        self._t = tile
        self.pc_bits = pc_bits
        n = tile.scalar_issue_per_cycle
        disp = dispatch_layout(pc_bits)
        super().__init__({
            "alu": In(data.ArrayLayout(disp, n)), "alu_a": In(data.ArrayLayout(32, n)),
            "alu_b": In(data.ArrayLayout(32, n)),
            "br": In(disp), "br_a": In(32), "br_b": In(32), "sys": In(disp),
            "cycle": In(32), "tile_id": In(16), "clear": In(1),
            "alu_w": Out(data.ArrayLayout(XW, n)), "br_w": Out(XW), "sys_w": Out(XW),
            "redirect": Out(1), "target": Out(pc_bits),
        })

    def _write(self, m, port, disp, value, name):
        """Drive x write ``port`` from ``disp``'s destination, ``alu_latency`` after issue."""
        pad = pad_cycles(name, "alu_latency", self._t.alu_latency, 0)
        en = disp.valid & disp.d.wx & (disp.d.rd != 0)
        m.d.comb += [port.en.eq(delay(m, en, pad, f"{name}_en", clear=self.clear)),
                     port.addr.eq(delay(m, disp.d.rd, pad, f"{name}_rd")),
                     port.data.eq(delay(m, value, pad, f"{name}_data"))]

    def elaborate(self, platform):
        m = Module()
        for i, (d, a, b) in enumerate(zip(self.alu, self.alu_a, self.alu_b, strict=True)):
            pc_bytes = Cat(0, 0, d.pc)
            opb = Mux(d.d.imm_b, d.d.imm, b)
            self._write(m, self.alu_w[i], d, alu_result(d.d.op, a, opb, pc_bytes), f"alu{i}")

        br, a, b = self.br, self.br_a, self.br_b
        pc_bytes = Cat(0, 0, br.pc)
        op = br.d.op
        taken = Signal()
        cmp = {BranchOp.BEQ: a == b, BranchOp.BNE: a != b,
               BranchOp.BLT: a.as_signed() < b.as_signed(),
               BranchOp.BGE: a.as_signed() >= b.as_signed(), BranchOp.BLTU: a < b,
               BranchOp.BGEU: a >= b, BranchOp.JAL: 1, BranchOp.JALR: 1}
        with m.Switch(op):
            for code, cond in cmp.items():
                with m.Case(code):
                    m.d.comb += taken.eq(cond)
            with m.Default():
                m.d.comb += taken.eq(0)
        target = Mux(op == BranchOp.JALR, a + br.d.imm, pc_bytes + br.d.imm)[:32]
        m.d.comb += [self.redirect.eq(br.valid & taken),
                     self.target.eq(target[2:2 + self.pc_bits])]
        self._write(m, self.br_w, br, (pc_bytes + 4)[:32], "link")

        sys = self.sys
        csr = Mux(sys.d.imm[:12] == CSR_CYCLE, self.cycle,
                  Mux(sys.d.imm[:12] == CSR_MHARTID, self.tile_id, 0))
        self._write(m, self.sys_w, sys, csr, "csr")
        return m
