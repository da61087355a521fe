"""Two-pass assembler and disassembler for the tile ISA of :mod:`hwgen.isa`.

Syntax: one instruction per line, ``label:`` prefixes, comments from ``#`` or ``//``,
``.word N`` for raw words. Registers: ``x0``..``x31`` or ABI names (``zero ra sp ... t6``),
``v0``..``v7``, accumulators ``acc0``..``acc3`` (``a0``..``a3`` is accepted in
accumulator positions, as in the tile contract). Branch and jump targets are labels or
numeric pc-relative byte offsets (the disassembler prints offsets, so its output
re-assembles to the same words). Pseudo-instructions: ``nop li mv j jr ret beqz bnez``,
``jal label`` (link in ra) and ``jalr rs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from .isa import ABI_NAMES, BY_NAME, CSRS, Instr, decode, encode, reg_name

__all__ = ["AsmError", "assemble", "disassemble", "disassemble_word", "format_instr"]

_ABI = {n: i for i, n in enumerate(ABI_NAMES)} | {"fp": 8}
_LABEL = re.compile(r"^[A-Za-z_.][\w.$]*$")
_MEM = re.compile(r"^(.*)\((.+)\)$")


class AsmError(ValueError):
    """Bad assembly input; the message starts with ``line N:``."""


def _int(text: str) -> int:
    t = text.strip().replace("_", "")
    try:
        return int(t, 0)
    except ValueError:
        raise ValueError(f"expected an integer, not {text.strip()!r}") from None


def _reg(kind: str, text: str) -> int:
    t = text.strip().lower()
    if kind == "x":
        if t in _ABI:
            return _ABI[t]
        m = re.fullmatch(r"x(\d+)", t)
        if m and int(m.group(1)) < 32:
            return int(m.group(1))
        raise ValueError(f"expected an x register, not {text.strip()!r}")
    if kind == "v":
        m = re.fullmatch(r"v(\d+)", t)
        if m and int(m.group(1)) < 8:
            return int(m.group(1))
        raise ValueError(f"expected a vector register v0..v7, not {text.strip()!r}")
    m = re.fullmatch(r"(?:acc|a)(\d+)", t)
    if m and int(m.group(1)) < 4:
        return int(m.group(1))
    raise ValueError(f"expected an accumulator acc0..acc3, not {text.strip()!r}")


def _split_operands(text: str) -> list[str]:
    return [p.strip() for p in text.split(",")] if text.strip() else []


def _expand_pseudo(name: str, ops: list[str]) -> list[tuple[str, list[str]]]:
    """Pseudo-instructions as real ones (``li`` of a label is always lui + addi)."""
    if name == "nop" and not ops:
        return [("addi", ["zero", "zero", "0"])]
    if name == "mv" and len(ops) == 2:
        return [("addi", [ops[0], ops[1], "0"])]
    if name == "j" and len(ops) == 1:
        return [("jal", ["zero", ops[0]])]
    if name == "jal" and len(ops) == 1:
        return [("jal", ["ra", ops[0]])]
    if name == "jr" and len(ops) == 1:
        return [("jalr", ["zero", f"0({ops[0]})"])]
    if name == "jalr" and len(ops) == 1:
        return [("jalr", ["ra", f"0({ops[0]})"])]
    if name == "ret" and not ops:
        return [("jalr", ["zero", "0(ra)"])]
    if name in ("beqz", "bnez") and len(ops) == 2:
        return [(name[:3], [ops[0], "zero", ops[1]])]
    if name == "li" and len(ops) == 2:
        try:
            value = _int(ops[1])
        except ValueError:
            return [("lui", [ops[0], f"%hi({ops[1]})"]),
                    ("addi", [ops[0], ops[0], f"%lo({ops[1]})"])]
        if not -(1 << 31) <= value < 1 << 32:
            raise ValueError(f"li: immediate must fit in 32 bits, not {value}")
        value &= 0xFFFFFFFF
        lo = value & 0xFFF
        lo = lo - 0x1000 if lo & 0x800 else lo
        if -2048 <= value - (1 << 32) < 0 or value < 2048:
            signed = value - (1 << 32) if value >= 1 << 31 else value
            return [("addi", [ops[0], "zero", str(signed)])]
        hi = ((value - lo) >> 12) & 0xFFFFF
        out = [("lui", [ops[0], str(hi)])]
        return out + [("addi", [ops[0], ops[0], str(lo)])] if lo else out
    return [(name, ops)]


def _operand_value(kind: str, text: str, pc: int, labels: dict[str, int]) -> int:
    if kind in ("imm", "e", "shamt", "uimm20"):
        m = re.fullmatch(r"%(hi|lo)\((.+)\)", text.strip())
        if m:     # %hi/%lo of a label address (from li of a label)
            addr = labels.get(m.group(2).strip())
            if addr is None:
                raise ValueError(f"unknown label {m.group(2).strip()!r}")
            lo = addr & 0xFFF
            lo = lo - 0x1000 if lo & 0x800 else lo
            return ((addr - lo) >> 12) & 0xFFFFF if m.group(1) == "hi" else lo
        return _int(text)
    if kind == "label":
        t = text.strip()
        if _LABEL.match(t) and t not in _ABI:
            if t not in labels:
                raise ValueError(f"unknown label {t!r}")
            return labels[t] - pc
        return _int(t)
    if kind == "csr":
        t = text.strip().lower()
        return CSRS[t] if t in CSRS else _int(t)
    return _reg(kind, text)


def _build(name: str, ops: list[str], pc: int, labels: dict[str, int], tile) -> int:
    spec = BY_NAME.get(name)
    if spec is None:
        raise ValueError(f"unknown instruction {name!r}")
    if len(ops) != len(spec.operands):
        raise ValueError(f"{name} takes {len(spec.operands)} operands, not {len(ops)}")
    fields = {"rd": 0, "rs1": 0, "rs2": 0, "imm": 0}
    for (kind, field), text in zip(spec.operands, ops, strict=True):
        if kind == "mem":
            m = _MEM.match(text.strip())
            if not m:
                raise ValueError(f"expected offset(register), not {text.strip()!r}")
            fields["imm"] = _int(m.group(1)) if m.group(1).strip() else 0
            fields["rs1"] = _reg("x", m.group(2))
        else:
            fields[field] = _operand_value(kind, text, pc, labels)
    if tile is not None and spec.fmt == "VE":
        lanes = tile.lanes_int8 if spec.bwidth == 8 else tile.lanes_fp16
        if not 0 <= fields["imm"] < lanes:
            raise ValueError(f"{name}: element index must be below {lanes} lanes, "
                             f"not {fields['imm']}")
    if tile is not None and spec.unit.name == "VLSU" and fields["imm"] % (tile.vlen // 8):
        raise ValueError(f"{name}: offset must be a multiple of {tile.vlen // 8} bytes, "
                         f"not {fields['imm']}")
    return encode(Instr(spec, **fields))


def _strip(line: str) -> str:
    for mark in ("#", "//"):
        line = line.split(mark, 1)[0]
    return line.strip()


def assemble(text: str, tile=None) -> list[int]:
    """Assemble ``text`` into 32-bit words starting at address 0.

    With a ``TileConfig``, element indices and vector offsets are checked against its
    lanes and row size. Raises :class:`AsmError` (``line N: ...``) on bad input.
    """
    items: list[tuple[int, str, str, list[str]]] = []      # (line, name, raw, operands)
    labels: dict[str, int] = {}
    pc = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _strip(raw)
        try:
            while True:
                m = re.match(r"^([A-Za-z_.][\w.$]*)\s*:(.*)$", line)
                if not m:
                    break
                label = m.group(1)
                if label in labels:
                    raise ValueError(f"label {label!r} defined twice")
                labels[label] = pc
                line = m.group(2).strip()
            if not line:
                continue
            name, rest = (re.split(r"\s+", line, maxsplit=1) + [""])[:2]
            name = name.lower()
            ops = _split_operands(rest)
            if name == ".word":
                expanded = [(".word", ops)]
            else:
                expanded = _expand_pseudo(name, ops)
        except ValueError as exc:
            raise AsmError(f"line {lineno}: {exc} in {raw.strip()!r}") from None
        for nm, o in expanded:
            items.append((lineno, nm, raw.strip(), o))
            pc += 4
    words: list[int] = []
    for index, (lineno, name, raw, ops) in enumerate(items):
        try:
            if name == ".word":
                if len(ops) != 1:
                    raise ValueError(".word takes one value")
                value = _int(ops[0])
                if not -(1 << 31) <= value < 1 << 32:
                    raise ValueError(f".word value must fit in 32 bits, not {value}")
                words.append(value & 0xFFFFFFFF)
            else:
                words.append(_build(name, ops, 4 * index, labels, tile))
        except ValueError as exc:
            raise AsmError(f"line {lineno}: {exc} in {raw!r}") from None
    return words


def format_instr(ins: Instr) -> str:
    """Canonical assembly text of a decoded instruction (re-assembles to the same word)."""
    parts = []
    for kind, field in ins.spec.operands:
        value = getattr(ins, field)
        if kind in ("x", "v", "acc"):
            parts.append(reg_name(kind, value))
        elif kind == "mem":
            parts.append(f"{ins.imm}({reg_name('x', ins.rs1)})")
        elif kind == "csr":
            parts.append(next(n for n, v in CSRS.items() if v == value))
        elif kind == "uimm20":
            parts.append(f"{value:#x}")
        else:
            parts.append(str(value))
    return f"{ins.name} {', '.join(parts)}".strip()


def disassemble_word(word: int) -> str:
    """One word as assembly text; ValueError for an invalid word."""
    return format_instr(decode(word))


def disassemble(words: Iterable[int] | Sequence[int]) -> list[str]:
    """Each word as assembly text; invalid words become ``.word 0x...``."""
    out = []
    for w in words:
        try:
            out.append(disassemble_word(w))
        except ValueError:
            out.append(f".word {w:#010x}")
    return out
