"""ISA encodings, assembler and disassembler: round trips, known encodings, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer.design import TileConfig
from hwgen import isa
from hwgen.asm import AsmError, assemble, disassemble, disassemble_word, format_instr
from hwgen.isa import BY_NAME, SPECS, Instr, Unit, decode, encode

_RANGES = {"x": (0, 31), "v": (0, 7), "acc": (0, 3), "shamt": (0, 31), "uimm20": (0, 0xFFFFF),
           "e": (0, 255)}


@st.composite
def instructions(draw):
    """A random valid instruction: every operand drawn over its full encodable range."""
    spec = draw(st.sampled_from(SPECS))
    fields = {"rd": 0, "rs1": 0, "rs2": 0, "imm": 0}
    for kind, field in spec.operands:
        if kind in _RANGES:
            fields[field] = draw(st.integers(*_RANGES[kind]))
        elif kind == "mem":
            fields["rs1"] = draw(st.integers(0, 31))
            fields["imm"] = draw(st.integers(-2048, 2047))
        elif kind == "imm":
            fields["imm"] = draw(st.integers(-2048, 2047))
        elif kind == "csr":
            fields["imm"] = draw(st.sampled_from(sorted(isa.CSRS.values())))
        elif kind == "label":
            lo, hi = (-4096, 4094) if spec.fmt == "B" else (-(1 << 20), (1 << 20) - 2)
            fields["imm"] = 2 * draw(st.integers(lo // 2, hi // 2))
    return Instr(spec, **fields)


@given(instructions())
def test_encode_decode_round_trip(ins):
    assert decode(encode(ins)) == ins


@given(instructions())
def test_assemble_disassemble_round_trip(ins):
    word = encode(ins)
    text = disassemble_word(word)
    assert assemble(text) == [word], text
    assert format_instr(ins) == text


@given(st.lists(instructions(), min_size=1, max_size=20))
def test_program_round_trip(prog):
    words = [encode(i) for i in prog]
    assert assemble("\n".join(disassemble(words))) == words


@given(st.integers(0, (1 << 32) - 1))
def test_decode_accepts_exactly_the_encodable_words(word):
    """Any 32-bit word either decodes to an instruction that re-encodes to itself or is
    rejected: fixed-zero fields and register ranges are part of the encoding."""
    try:
        ins = decode(word)
    except ValueError as exc:
        assert str(exc) == f"{word:#010x} is not a valid instruction"
        return
    assert encode(ins) == word


def test_encodings_have_no_overlap():
    for i, a in enumerate(SPECS):
        ma, va = a.mask_match()
        for b in SPECS[i + 1:]:
            mb, vb = b.mask_match()
            assert (va ^ vb) & ma & mb, f"{a.name} and {b.name} overlap"


@pytest.mark.parametrize("text, word", [
    # standard RV32I encodings (RISC-V unprivileged spec, chapter 2 / table 24.2)
    ("addi a0, zero, 1", 0x00100513),
    ("add t1, t2, t3", 0x01C38333),
    ("sub s0, s1, s2", 0x41248433),
    ("lw a1, 8(sp)", 0x00812583),
    ("sw a1, -4(sp)", 0xFEB12E23),
    ("lui t0, 0x12345", 0x123452B7),
    ("srai t0, t1, 3", 0x40335293),
    ("jalr zero, 0(ra)", 0x00008067),
    ("ecall", 0x00000073),
    ("csrr a0, cycle", 0xC0002573),
    ("csrr a0, mhartid", 0xF1402573),
])
def test_standard_encodings(text, word):
    assert assemble(text) == [word]


def test_custom_opcode_space_holds_all_vector_ops():
    custom = {isa.Opcode.CUSTOM0, isa.Opcode.CUSTOM1, isa.Opcode.CUSTOM2, isa.Opcode.CUSTOM3}
    for spec in SPECS:
        assert (spec.opcode in custom) == (spec.unit in isa.VECTOR_UNITS), spec.name


def test_metadata_latencies_come_from_the_tile():
    t = TileConfig()
    assert isa.latency(BY_NAME["vmacw.h"], t) == t.mac_latency
    assert isa.latency(BY_NAME["vred.h"], t) == t.reduce_latency
    assert isa.latency(BY_NAME["vld"], t) == t.load_latency
    assert isa.latency(BY_NAME["vexp.h"], t) == t.valu_latency
    assert isa.latency(BY_NAME["vrecv"], t) == t.vnet_latency
    assert BY_NAME["vmacx.b"].unit is Unit.VMAC and BY_NAME["vmacx.b"].accumulate
    with pytest.raises(ValueError, match=r"^sw writes no register and has no result latency$"):
        isa.latency(BY_NAME["sw"], t)


def test_labels_pseudos_and_comments():
    words = assemble("""
        start:  li a0, 0x12345678   # lui + addi
                li a1, -1           // one addi
                nop
                mv a2, a1
        loop:   beqz a0, done
                bnez a1, loop
                j start
        done:   ret
    """)
    text = disassemble(words)
    assert text[:3] == ["lui a0, 0x12345", "addi a0, a0, 1656", "addi a1, zero, -1"]
    assert text[3:5] == ["addi zero, zero, 0", "addi a2, a1, 0"]
    assert text[5] == "beq a0, zero, 12"          # forward to done (3 words on)
    assert text[6] == "bne a1, zero, -4"
    assert text[7] == "jal zero, -28"
    assert text[8] == "jalr zero, 0(ra)"


def test_li_corner_values():
    for value in (0, 2047, -2048, 2048, -2049, 0x7FFFFFFF, -0x80000000, 0xFFFFFFFF, 0x800):
        words = assemble(f"li t0, {value}")
        # evaluate lui/addi by hand
        reg = 0
        for ins in map(decode, words):
            reg = ((ins.imm << 12) if ins.name == "lui" else reg + ins.imm) & 0xFFFFFFFF
        assert reg == value & 0xFFFFFFFF, value


def test_vector_syntax_accepts_contract_accumulator_names():
    assert assemble("vmacw.h a0, v1, 3") == assemble("vmacw.h acc0, v1, 3")
    assert disassemble_word(assemble("vred.h a0, a1")[0]) == "vred.h a0, acc1"


@pytest.mark.parametrize("src, message", [
    ("nop\nfoo x1", r"^line 2: unknown instruction 'foo' in 'foo x1'$"),
    ("add x1, x2", r"^line 1: add takes 3 operands, not 2 in 'add x1, x2'$"),
    ("addi x1, x1, 5000", r"^line 1: addi: immediate must be between -2048 and 2047, not 5000"),
    ("add x1, x2, x32", r"^line 1: expected an x register, not 'x32'"),
    ("vadd.h v1, v2, v8", r"^line 1: expected a vector register v0..v7, not 'v8'"),
    ("vzero acc4", r"^line 1: expected an accumulator acc0..acc3, not 'acc4'"),
    ("\n\nbeq x1, x2, nowhere", r"^line 3: unknown label 'nowhere'"),
    ("a:\na: nop", r"^line 2: label 'a' defined twice"),
    ("lw x1, 4", r"^line 1: expected offset\(register\), not '4'"),
    ("slli x1, x1, 32", r"^line 1: slli: shift amount must be between 0 and 31, not 32"),
    ("csrr a0, 0x123", r"^line 1: csrr: CSR must be cycle \(0xc00\) or mhartid \(0xf14\)"),
    ("li a0, 0x100000000", r"^line 1: li: immediate must fit in 32 bits"),
])
def test_bad_assembly_is_reported_with_line_number(src, message):
    with pytest.raises(AsmError, match=message):
        assemble(src)


def test_tile_checks_element_index_and_alignment():
    t = TileConfig(vlen=128)
    assert assemble("vmacw.b acc0, v1, 15", t)
    with pytest.raises(AsmError, match=r"^line 1: vmacw.h: element index must be below 8 "
                                       r"lanes, not 8"):
        assemble("vmacw.h acc0, v1, 8", t)
    with pytest.raises(AsmError, match=r"^line 1: vld: offset must be a multiple of 16 "
                                       r"bytes, not 8"):
        assemble("vld v1, 8(zero)", t)


def test_invalid_words():
    with pytest.raises(ValueError, match=r"^0x00000000 is not a valid instruction$"):
        decode(0)
    # vadd.h with a vector register field of 9 is not an instruction
    bad = encode(Instr(BY_NAME["vadd.h"], 1, 2, 3)) | (8 << 20)
    with pytest.raises(ValueError, match="is not a valid instruction"):
        decode(bad)
    assert disassemble([0]) == [".word 0x00000000"]
