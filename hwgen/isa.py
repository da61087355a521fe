"""The tile ISA: RV32I subset plus vector/tensor ops in custom-0..3 (the one encoding source).

Every instruction is one :class:`InstrSpec` in :data:`SPECS`. The assembler, the
disassembler, the instruction-set simulator, the RTL decoder (``hwgen/tile/decode.py``),
the kernel compiler and the analytical model all read this table; nothing else knows
an encoding. Field layout (``docs/isa.md`` has the full table):

* standard RISC-V formats R, I, S, B, U, J for the scalar part;
* ``VE`` (vector element): ``e[31:24] vb[23:20] rs1/va[19:15] funct3[14:12] rd[11:7] op[6:0]``
  for the ops that index one element (``vmac*``, ``vmv.s``, ``vmv.x``);
* vector ops without an element index use the R layout (``funct7 rs2 rs1 funct3 rd op``).

Register-field rule: an x-register source is always in ``rs1``; a single vector source
goes in ``rs1`` unless ``rs1`` holds an x register, then it goes in ``rs2``; the vector
indexed by an element number is ``vb`` (``rs2``); an accumulator source is in ``rs2``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.lib.enum import Enum

__all__ = [
    "Opcode", "Unit", "RegFile", "AluOp", "BranchOp", "MemOp", "SysOp", "VmacOp", "ValuOp",
    "VnetOp", "CSR_CYCLE", "CSR_MHARTID", "CSRS", "InstrSpec", "Instr", "SPECS", "BY_NAME",
    "SCALAR_UNITS", "VECTOR_UNITS", "encode", "decode", "latency", "reg_name", "ABI_NAMES",
]


class Opcode(Enum, shape=7):
    """Major opcodes (RISC-V base opcode map; custom-0..3 hold the vector ops)."""
    LOAD = 0x03
    CUSTOM0 = 0x0B   # VLSU + VNET
    OP_IMM = 0x13
    AUIPC = 0x17
    STORE = 0x23
    CUSTOM1 = 0x2B   # VMAC multiply-accumulate (VE format)
    OP = 0x33
    LUI = 0x37
    CUSTOM2 = 0x5B   # VMAC accumulator ops + wset
    BRANCH = 0x63
    JALR = 0x67
    JAL = 0x6F
    SYSTEM = 0x73
    CUSTOM3 = 0x7B   # VALU


class Unit(Enum, shape=3):
    """Functional unit an instruction issues to (scalar: ALU..SYS, vector: VLSU..VNET)."""
    ALU = 0
    BRANCH = 1
    LSU = 2
    SYS = 3
    VLSU = 4
    VMAC = 5
    VALU = 6
    VNET = 7


SCALAR_UNITS = (Unit.ALU, Unit.BRANCH, Unit.LSU, Unit.SYS)
VECTOR_UNITS = (Unit.VLSU, Unit.VMAC, Unit.VALU, Unit.VNET)


class RegFile(Enum, shape=2):
    """Architectural register files: x0..x31, v0..v7, acc0..acc3."""
    X = 0
    V = 1
    A = 2


class AluOp(Enum, shape=4):
    ADD = 0
    SUB = 1
    SLL = 2
    SLT = 3
    SLTU = 4
    XOR = 5
    SRL = 6
    SRA = 7
    OR = 8
    AND = 9
    LUI = 10     # rd <- imm
    AUIPC = 11   # rd <- pc + imm


class BranchOp(Enum, shape=4):
    BEQ = 0
    BNE = 1
    BLT = 4
    BGE = 5
    BLTU = 6
    BGEU = 7
    JAL = 8
    JALR = 9


class MemOp(Enum, shape=2):
    LOAD = 0
    STORE = 1
    WLOAD = 2    # vldw: vd <- WMEM[wptr]; wptr += 1


class SysOp(Enum, shape=1):
    ECALL = 0
    CSRR = 1


class VmacOp(Enum, shape=4):
    MACW = 0     # acc[i] += WMEM[wptr][i] * vb[e]; wptr += 1
    MACX = 1     # acc[i] += va[i] * vb[e]
    MACV = 2     # acc[i] += va[i] * vb[i]
    ZERO = 3
    RED = 4
    CVT = 5
    WSET = 6


class ValuOp(Enum, shape=4):
    ADD = 0
    SUB = 1
    MUL = 2
    MAX = 3
    EXP = 4
    RCP = 5
    RSQRT = 6
    ADDS = 8     # with an FP16 scalar from rs1[15:0]
    MULS = 10
    MVS = 12     # vd[e] <- rs1[15:0]
    MVX = 13     # rd <- zext(va[e])


class VnetOp(Enum, shape=1):
    SEND = 0
    RECV = 1


#: CSR numbers (RISC-V privileged spec: cycle = 0xC00, mhartid = 0xF14).
CSR_CYCLE = 0xC00
CSR_MHARTID = 0xF14
CSRS = {"cycle": CSR_CYCLE, "mhartid": CSR_MHARTID}

#: RISC-V ABI names of x0..x31 (the disassembler prints these).
ABI_NAMES = ("zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2",
             "a3", "a4", "a5", "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9",
             "s10", "s11", "t3", "t4", "t5", "t6")

#: Encoding fields: name -> (lsb, width).
FIELDS = {"rd": (7, 5), "funct3": (12, 3), "rs1": (15, 5), "rs2": (20, 5), "funct7": (25, 7),
          "vb": (20, 4), "e": (24, 8)}
#: Field occupied by each operand-carrying slot, per format (imm handled separately).
_REG_FIELDS = {"rd": "rd", "rs1": "rs1", "rs2": "rs2"}
#: Operand kinds in assembly syntax: x register, v register, accumulator, immediates.
OPERAND_KINDS = ("x", "v", "acc", "imm", "e", "mem", "label", "csr", "shamt", "uimm20")
_REG_LIMIT = {"x": 32, "v": 8, "acc": 4}


@dataclass(frozen=True)
class InstrSpec:
    """One instruction: syntax, encoding and the metadata the issue logic and models use.

    Members
    -------
    name : str
        Mnemonic (``vmacw.h``).
    fmt : str
        ``R I IS S B U J VE CSR SYS`` (IS = shift-immediate, I-format with funct7).
    opcode, funct3, funct7 : Opcode, int or None
        Fixed encoding fields (None when the format has no such field).
    operands : tuple[tuple[str, str], ...]
        Assembly operands as (kind, field): ``("acc", "rd"), ("v", "rs2"), ("e", "imm")``.
    unit : Unit
        Functional unit.
    op : Enum member
        Unit-level operation (``AluOp.ADD``...).
    dst : tuple[RegFile, str] or None
        Destination register file and field.
    srcs : tuple[tuple[RegFile, str], ...]
        Source registers (file, field) read at issue.
    latency_attr : str or None
        ``TileConfig`` property giving issue-to-dependent-issue cycles of ``dst``.
    accumulate : bool
        In-place accumulator update: a later VMAC into the same accumulator does not wait.
    bwidth : int
        Element width in bits of the ``.h``/``.b`` variant (0 when not applicable).
    dmem : bool
        Uses the DMEM port (lw, sw, vld, vst: one per cycle).
    wptr : bool
        Uses the WMEM stream pointer (wset, vmacw, vldw: one per cycle).
    """

    name: str
    fmt: str
    opcode: Opcode
    funct3: int | None
    funct7: int | None
    operands: tuple[tuple[str, str], ...]
    unit: Unit
    op: Enum
    dst: tuple[RegFile, str] | None = None
    srcs: tuple[tuple[RegFile, str], ...] = ()
    latency_attr: str | None = None
    accumulate: bool = False
    bwidth: int = 0
    dmem: bool = False
    wptr: bool = False

    @property
    def is_vector(self) -> bool:
        return self.unit in VECTOR_UNITS

    @property
    def fixed_zero_fields(self) -> tuple[str, ...]:
        """Register fields this format has but the instruction does not use (must be 0)."""
        have = {"R": ("rd", "rs1", "rs2"), "I": ("rd", "rs1"), "IS": ("rd", "rs1"),
                "S": ("rs1", "rs2"), "B": ("rs1", "rs2"), "U": ("rd",), "J": ("rd",),
                "VE": ("rd", "rs1", "vb", "e"), "CSR": ("rd", "rs1"), "SYS": ()}[self.fmt]
        used = {f for _, f in self.operands}
        if any(k == "mem" for k, _ in self.operands):
            used.add("rs1")
        if self.fmt == "VE":
            used = {{"rs2": "vb", "imm": "e"}.get(f, f) for f in used}
        return tuple(f for f in have if f not in used)

    def mask_match(self) -> tuple[int, int]:
        """(mask, match) of the fixed bits: ``word & mask == match`` identifies the op."""
        mask, match = 0x7F, self.opcode.value
        if self.funct3 is not None:
            mask |= 0x7 << 12
            match |= self.funct3 << 12
        if self.funct7 is not None:
            mask |= 0x7F << 25
            match |= self.funct7 << 25
        for f in self.fixed_zero_fields:
            lsb, width = FIELDS[f]
            mask |= ((1 << width) - 1) << lsb
        if self.fmt == "SYS":
            mask = 0xFFFFFFFF
        return mask, match


@dataclass(frozen=True)
class Instr:
    """A decoded instruction: spec plus field values (``imm`` is the sign-extended
    immediate, the element index of VE ops, the shift amount or the CSR number)."""

    spec: InstrSpec
    rd: int = 0
    rs1: int = 0
    rs2: int = 0
    imm: int = 0

    @property
    def name(self) -> str:
        return self.spec.name


X, V, A = RegFile.X, RegFile.V, RegFile.A


def _specs() -> tuple[InstrSpec, ...]:
    out: list[InstrSpec] = []
    xd, xs1, xs2 = ("x", "rd"), ("x", "rs1"), ("x", "rs2")
    lat_alu = "alu_latency"
    for name, f3, f7, op in (("add", 0, 0, AluOp.ADD), ("sub", 0, 0x20, AluOp.SUB),
                             ("sll", 1, 0, AluOp.SLL), ("slt", 2, 0, AluOp.SLT),
                             ("sltu", 3, 0, AluOp.SLTU), ("xor", 4, 0, AluOp.XOR),
                             ("srl", 5, 0, AluOp.SRL), ("sra", 5, 0x20, AluOp.SRA),
                             ("or", 6, 0, AluOp.OR), ("and", 7, 0, AluOp.AND)):
        out.append(InstrSpec(name, "R", Opcode.OP, f3, f7, (xd, xs1, xs2), Unit.ALU, op,
                             (X, "rd"), ((X, "rs1"), (X, "rs2")), lat_alu))
    for name, f3, op in (("addi", 0, AluOp.ADD), ("slti", 2, AluOp.SLT), ("sltiu", 3, AluOp.SLTU),
                         ("xori", 4, AluOp.XOR), ("ori", 6, AluOp.OR), ("andi", 7, AluOp.AND)):
        out.append(InstrSpec(name, "I", Opcode.OP_IMM, f3, None, (xd, xs1, ("imm", "imm")),
                             Unit.ALU, op, (X, "rd"), ((X, "rs1"),), lat_alu))
    for name, f3, f7, op in (("slli", 1, 0, AluOp.SLL), ("srli", 5, 0, AluOp.SRL),
                             ("srai", 5, 0x20, AluOp.SRA)):
        out.append(InstrSpec(name, "IS", Opcode.OP_IMM, f3, f7, (xd, xs1, ("shamt", "imm")),
                             Unit.ALU, op, (X, "rd"), ((X, "rs1"),), lat_alu))
    out.append(InstrSpec("lui", "U", Opcode.LUI, None, None, (xd, ("uimm20", "imm")), Unit.ALU,
                         AluOp.LUI, (X, "rd"), (), lat_alu))
    out.append(InstrSpec("auipc", "U", Opcode.AUIPC, None, None, (xd, ("uimm20", "imm")),
                         Unit.ALU, AluOp.AUIPC, (X, "rd"), (), lat_alu))
    out.append(InstrSpec("jal", "J", Opcode.JAL, None, None, (xd, ("label", "imm")), Unit.BRANCH,
                         BranchOp.JAL, (X, "rd"), (), lat_alu))
    out.append(InstrSpec("jalr", "I", Opcode.JALR, 0, None, (xd, ("mem", "imm")), Unit.BRANCH,
                         BranchOp.JALR, (X, "rd"), ((X, "rs1"),), lat_alu))
    for name, f3, op in (("beq", 0, BranchOp.BEQ), ("bne", 1, BranchOp.BNE),
                         ("blt", 4, BranchOp.BLT), ("bge", 5, BranchOp.BGE),
                         ("bltu", 6, BranchOp.BLTU), ("bgeu", 7, BranchOp.BGEU)):
        out.append(InstrSpec(name, "B", Opcode.BRANCH, f3, None, (xs1, xs2, ("label", "imm")),
                             Unit.BRANCH, op, None, ((X, "rs1"), (X, "rs2"))))
    out.append(InstrSpec("lw", "I", Opcode.LOAD, 2, None, (xd, ("mem", "imm")), Unit.LSU,
                         MemOp.LOAD, (X, "rd"), ((X, "rs1"),), "load_latency", dmem=True))
    out.append(InstrSpec("sw", "S", Opcode.STORE, 2, None, (xs2, ("mem", "imm")), Unit.LSU,
                         MemOp.STORE, None, ((X, "rs1"), (X, "rs2")), dmem=True))
    out.append(InstrSpec("csrr", "CSR", Opcode.SYSTEM, 2, None, (xd, ("csr", "imm")), Unit.SYS,
                         SysOp.CSRR, (X, "rd"), (), lat_alu))
    out.append(InstrSpec("ecall", "SYS", Opcode.SYSTEM, 0, None, (), Unit.SYS, SysOp.ECALL))
    # custom-0: VLSU + VNET
    vd, vs1, vs2 = ("v", "rd"), ("v", "rs1"), ("v", "rs2")
    out.append(InstrSpec("vld", "I", Opcode.CUSTOM0, 0, None, (vd, ("mem", "imm")), Unit.VLSU,
                         MemOp.LOAD, (V, "rd"), ((X, "rs1"),), "load_latency", dmem=True))
    out.append(InstrSpec("vst", "S", Opcode.CUSTOM0, 1, None, (vs2, ("mem", "imm")), Unit.VLSU,
                         MemOp.STORE, None, ((X, "rs1"), (V, "rs2")), dmem=True))
    out.append(InstrSpec("vldw", "R", Opcode.CUSTOM0, 4, 0, (vd,), Unit.VLSU, MemOp.WLOAD,
                         (V, "rd"), (), "load_latency", wptr=True))
    out.append(InstrSpec("vsend", "R", Opcode.CUSTOM0, 2, 0, (vs2, xs1), Unit.VNET, VnetOp.SEND,
                         None, ((X, "rs1"), (V, "rs2"))))
    out.append(InstrSpec("vrecv", "R", Opcode.CUSTOM0, 3, 0, (vd,), Unit.VNET, VnetOp.RECV,
                         (V, "rd"), (), "vnet_latency"))
    # custom-1: VMAC multiply-accumulate, VE format
    acc = ("acc", "rd")
    for f3, (name, op, ops, srcs) in enumerate(
            (("vmacw", VmacOp.MACW, (acc, vs2, ("e", "imm")), ((V, "rs2"),)),
             ("vmacx", VmacOp.MACX, (acc, vs1, vs2, ("e", "imm")), ((V, "rs1"), (V, "rs2"))),
             ("vmacv", VmacOp.MACV, (acc, vs1, vs2), ((V, "rs1"), (V, "rs2"))))):
        for k, (suffix, width) in enumerate(((".h", 16), (".b", 8))):
            out.append(InstrSpec(name + suffix, "VE", Opcode.CUSTOM1, 2 * f3 + k, None, ops,
                                 Unit.VMAC, op, (A, "rd"), srcs, "mac_latency", True, width,
                                 wptr=op is VmacOp.MACW))
    # custom-2: VMAC accumulator ops
    accs = ("acc", "rs2")
    out.append(InstrSpec("vzero", "R", Opcode.CUSTOM2, 0, 0, (acc,), Unit.VMAC, VmacOp.ZERO,
                         (A, "rd"), (), "mac_latency", True))
    out.append(InstrSpec("vred.h", "R", Opcode.CUSTOM2, 1, 0, (xd, accs), Unit.VMAC, VmacOp.RED,
                         (X, "rd"), ((A, "rs2"),), "reduce_latency", bwidth=16))
    out.append(InstrSpec("vred.b", "R", Opcode.CUSTOM2, 2, 0, (xd, accs), Unit.VMAC, VmacOp.RED,
                         (X, "rd"), ((A, "rs2"),), "reduce_latency", bwidth=8))
    out.append(InstrSpec("vcvt.h", "R", Opcode.CUSTOM2, 3, 0, (vd, accs), Unit.VMAC, VmacOp.CVT,
                         (V, "rd"), ((A, "rs2"),), "mac_latency", bwidth=16))
    out.append(InstrSpec("vcvt.b", "R", Opcode.CUSTOM2, 4, 0, (vd, accs, xs1), Unit.VMAC,
                         VmacOp.CVT, (V, "rd"), ((A, "rs2"), (X, "rs1")), "mac_latency", bwidth=8))
    out.append(InstrSpec("wset", "R", Opcode.CUSTOM2, 5, 0, (xs1,), Unit.VMAC, VmacOp.WSET,
                         None, ((X, "rs1"),), wptr=True))
    # custom-3: VALU
    lat_v = "valu_latency"
    for name, op in (("vadd.h", ValuOp.ADD), ("vsub.h", ValuOp.SUB), ("vmul.h", ValuOp.MUL),
                     ("vmax.h", ValuOp.MAX)):
        out.append(InstrSpec(name, "R", Opcode.CUSTOM3, 0, op.value, (vd, vs1, vs2), Unit.VALU, op,
                             (V, "rd"), ((V, "rs1"), (V, "rs2")), lat_v, bwidth=16))
    for name, op in (("vexp.h", ValuOp.EXP), ("vrcp.h", ValuOp.RCP), ("vrsqrt.h", ValuOp.RSQRT)):
        out.append(InstrSpec(name, "R", Opcode.CUSTOM3, 0, op.value, (vd, vs1), Unit.VALU, op,
                             (V, "rd"), ((V, "rs1"),), lat_v, bwidth=16))
    for name, op in (("vadd.hs", ValuOp.ADDS), ("vmul.hs", ValuOp.MULS)):
        out.append(InstrSpec(name, "R", Opcode.CUSTOM3, 1, op.value & 7, (vd, vs2, xs1),
                             Unit.VALU, op, (V, "rd"), ((X, "rs1"), (V, "rs2")), lat_v, bwidth=16))
    out.append(InstrSpec("vmv.s", "VE", Opcode.CUSTOM3, 2, None, (vd, xs1, ("e", "imm")),
                         Unit.VALU, ValuOp.MVS, (V, "rd"), ((X, "rs1"), (V, "rd")), lat_v,
                         bwidth=16))
    out.append(InstrSpec("vmv.x", "VE", Opcode.CUSTOM3, 3, None, (xd, vs1, ("e", "imm")),
                         Unit.VALU, ValuOp.MVX, (X, "rd"), ((V, "rs1"),), lat_v, bwidth=16))
    return tuple(out)


SPECS: tuple[InstrSpec, ...] = _specs()
BY_NAME: dict[str, InstrSpec] = {s.name: s for s in SPECS}


def _sext(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _check_range(spec: InstrSpec, what: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{spec.name}: {what} must be between {lo} and {hi}, not {value}")


def encode(ins: Instr) -> int:
    """The 32-bit word of ``ins``; ValueError for out-of-range fields."""
    s = ins.spec
    for kind, field in s.operands:
        if kind in _REG_LIMIT:
            _check_range(s, field, getattr(ins, field), 0, _REG_LIMIT[kind] - 1)
    word = s.opcode.value | ((s.funct3 or 0) << 12)
    rd, rs1, rs2, imm = ins.rd, ins.rs1, ins.rs2, ins.imm
    fmt = s.fmt
    if fmt in ("R", "IS"):
        word |= (s.funct7 << 25) | (rd << 7) | (rs1 << 15)
        if fmt == "IS":
            _check_range(s, "shift amount", imm, 0, 31)
            rs2 = imm
        word |= rs2 << 20
    elif fmt == "I":
        _check_range(s, "immediate", imm, -2048, 2047)
        word |= ((imm & 0xFFF) << 20) | (rs1 << 15) | (rd << 7)
    elif fmt == "S":
        _check_range(s, "offset", imm, -2048, 2047)
        word |= (((imm >> 5) & 0x7F) << 25) | (rs2 << 20) | (rs1 << 15) | ((imm & 0x1F) << 7)
    elif fmt == "B":
        _check_range(s, "branch offset", imm, -4096, 4094)
        if imm & 1:
            raise ValueError(f"{s.name}: branch offset must be even, not {imm}")
        word |= ((((imm >> 12) & 1) << 31) | (((imm >> 5) & 0x3F) << 25) | (rs2 << 20)
                 | (rs1 << 15) | (((imm >> 1) & 0xF) << 8) | (((imm >> 11) & 1) << 7))
    elif fmt == "U":
        _check_range(s, "upper immediate", imm, 0, 0xFFFFF)
        word |= (imm << 12) | (rd << 7)
    elif fmt == "J":
        _check_range(s, "jump offset", imm, -(1 << 20), (1 << 20) - 2)
        if imm & 1:
            raise ValueError(f"{s.name}: jump offset must be even, not {imm}")
        word |= ((((imm >> 20) & 1) << 31) | (((imm >> 1) & 0x3FF) << 21)
                 | (((imm >> 11) & 1) << 20) | (((imm >> 12) & 0xFF) << 12) | (rd << 7))
    elif fmt == "VE":
        _check_range(s, "element index", imm, 0, 255)
        word |= (imm << 24) | (rs2 << 20) | (rs1 << 15) | (rd << 7)
    elif fmt == "CSR":
        if imm not in CSRS.values():
            raise ValueError(f"{s.name}: CSR must be cycle (0xc00) or mhartid (0xf14), "
                             f"not {imm:#x}")
        word |= (imm << 20) | (rd << 7)
    return word


def decode(word: int) -> Instr:
    """Decode one 32-bit word; ValueError naming the word when it is not a valid op."""
    if not 0 <= word < 1 << 32:
        raise ValueError(f"instruction word must be 32-bit, not {word:#x}")
    for s in SPECS:
        mask, match = s.mask_match()
        if word & mask != match:
            continue
        rd, rs1, rs2 = (word >> 7) & 31, (word >> 15) & 31, (word >> 20) & 31
        fmt = s.fmt
        imm = 0
        if fmt == "I":
            imm = _sext(word >> 20, 12)
        elif fmt == "IS":
            imm, rs2 = rs2, 0
        elif fmt == "S":
            imm = _sext(((word >> 25) << 5) | ((word >> 7) & 31), 12)
            rd = 0
        elif fmt == "B":
            imm = _sext((((word >> 31) & 1) << 12) | (((word >> 7) & 1) << 11)
                        | (((word >> 25) & 0x3F) << 5) | (((word >> 8) & 0xF) << 1), 13)
            rd = 0
        elif fmt == "U":
            imm = word >> 12
        elif fmt == "J":
            imm = _sext((((word >> 31) & 1) << 20) | (((word >> 12) & 0xFF) << 12)
                        | (((word >> 20) & 1) << 11) | (((word >> 21) & 0x3FF) << 1), 21)
        elif fmt == "VE":
            imm, rs2 = word >> 24, (word >> 20) & 15
        elif fmt == "CSR":
            imm = word >> 20
            if imm not in CSRS.values():
                continue
        used = {f for k, f in s.operands} | ({"rs1"} if ("mem", "imm") in s.operands else set())
        ins = Instr(s, *(v if f in used else 0 for f, v in
                         (("rd", rd), ("rs1", rs1), ("rs2", rs2), ("imm", imm))))
        if all(getattr(ins, f) < _REG_LIMIT[k] for k, f in s.operands if k in _REG_LIMIT):
            return ins
    raise ValueError(f"{word:#010x} is not a valid instruction")


def latency(spec: InstrSpec, tile) -> int:
    """Cycles from issue of ``spec`` until a dependent of its destination may issue."""
    if spec.latency_attr is None:
        raise ValueError(f"{spec.name} writes no register and has no result latency")
    return int(getattr(tile, spec.latency_attr))


def reg_name(kind: str, index: int) -> str:
    """Assembly name of register ``index`` of kind ``x``/``v``/``acc``."""
    if kind == "x":
        return ABI_NAMES[index]
    return f"{'v' if kind == 'v' else 'acc'}{index}"
