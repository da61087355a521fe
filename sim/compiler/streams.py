"""Pointer streams of an unrolled loop: offsets inside the 12-bit immediate window.

A stream is a pointer register walking an operand ``stride`` bytes per block. Inside a
loop iteration of ``u`` blocks the pointer is bumped once, at the top of the body (so the
closing branch never waits for it), and every access uses an immediate relative to the
pointer's current value. The pointer is biased (it runs ``bias`` bytes ahead of the
stream position) so that the body's accesses, including the next iteration's first
block loaded one block ahead, fit the signed 12-bit offset range.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .emit import IMM_MAX, IMM_MIN, Asm

__all__ = ["Stream"]


@dataclass
class Stream:
    """One pointer register over an operand.

    ``pos`` is the compile-time distance between the register's value and the start of
    the current iteration's first block (the stream position), so an access at stream
    byte ``o`` (relative to that block) has immediate ``o - pos``.
    """

    reg: str
    stride: int               # bytes per block
    row: int                  # alignment of accesses (vector row bytes)
    pos: int = 0
    bias: int = 0
    moves: list[int] = field(default_factory=list)

    def choose_bias(self, lo: int, hi: int, bump: int) -> None:
        """Bias such that stream bytes ``lo..hi`` are reachable after a bump of ``bump``."""
        b = lo - bump - IMM_MIN
        b -= b % self.row
        if hi - bump - b > IMM_MAX - self.row + 1:
            b = None      # does not fit: accesses will move the pointer (see imm)
        self.bias = 0 if b is None else b

    def imm(self, asm: Asm, offset: int) -> int:
        """Immediate for stream byte ``offset``; moves the pointer first if out of range."""
        rel = offset - self.pos
        if IMM_MIN <= rel <= IMM_MAX - self.row + 1:
            return rel
        step = rel - (rel % self.row)
        asm.addi(self.reg, self.reg, step)
        self.pos += step
        self.moves.append(step)
        return offset - self.pos
