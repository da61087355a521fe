"""Assembly builder for kernels: real instructions only, with the expected dynamic mix.

Every line the kernel compiler emits goes through :class:`Asm`, which knows how often
the line will execute (the trip counts of the loops around it), so a compiled program
carries its expected per-unit instruction counts, checked against the ISS in the tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from hwgen.isa import BY_NAME

__all__ = ["Asm", "IMM_MIN", "IMM_MAX", "fits_imm"]

#: 12-bit signed immediate of I/S-format instructions (addi, lw/sw, vld/vst offsets).
IMM_MIN, IMM_MAX = -2048, 2047


def fits_imm(value: int) -> bool:
    return IMM_MIN <= value <= IMM_MAX


class Asm:
    """Collects assembly lines and the number of times each executes."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counts: Counter[str] = Counter()     # unit name -> expected dynamic count
        self._mult = [1]
        self._labels = 0
        self._words = 0
        self._at: dict[str, int] = {}

    @contextmanager
    def times(self, n: int) -> Iterator[None]:
        """Lines emitted inside execute ``n`` times per execution of the enclosing code."""
        self._mult.append(self._mult[-1] * n)
        try:
            yield
        finally:
            self._mult.pop()

    def op(self, mnemonic: str, *operands: object) -> None:
        spec = BY_NAME.get(mnemonic)
        if spec is None:
            raise ValueError(f"not a real instruction: {mnemonic!r}")
        self.lines.append(f"    {mnemonic} {', '.join(str(o) for o in operands)}".rstrip())
        self.counts[spec.unit.name] += self._mult[-1]
        self._words += 1

    def label(self, prefix: str = "L") -> str:
        """A fresh label name (placed with :meth:`place`)."""
        self._labels += 1
        return f"{prefix}{self._labels}"

    def place(self, name: str) -> None:
        self.lines.append(f"{name}:")
        self._at[name] = self._words

    def bne_back(self, rs1: str, rs2: str, label: str) -> None:
        """Loop-closing ``bne`` to ``label`` (placed earlier); beyond the 4 KiB reach of a
        branch it becomes ``beq`` over a ``jal`` (the taken path costs the same bubble)."""
        if 4 * (self._words - self._at[label]) <= 4000:
            self.op("bne", rs1, rs2, label)
            return
        skip = self.label("far")
        self.op("beq", rs1, rs2, skip)
        self.op("jal", "zero", label)
        self.lines.append(f"{skip}:")

    def comment(self, text: str) -> None:
        self.lines.append(f"    # {text}")

    def li(self, rd: str, value: int) -> None:
        """Load a 32-bit constant with addi, or lui (+ addi): the expansion of ``li``."""
        value &= 0xFFFFFFFF
        signed = value - (1 << 32) if value >= 1 << 31 else value
        if fits_imm(signed):
            self.op("addi", rd, "zero", signed)
            return
        lo = value & 0xFFF
        lo = lo - 0x1000 if lo & 0x800 else lo
        self.op("lui", rd, ((value - lo) >> 12) & 0xFFFFF)
        if lo:
            self.op("addi", rd, rd, lo)

    def addi(self, rd: str, rs: str, value: int, tmp: str = "t6") -> None:
        """rd = rs + value for any 32-bit value (via ``tmp`` when it does not fit 12 bits)."""
        if fits_imm(value):
            if value or rd != rs:
                self.op("addi", rd, rs, value)
            return
        self.li(tmp, value)
        self.op("add", rd, rs, tmp)

    @property
    def source(self) -> str:
        return "\n".join(self.lines) + "\n"
