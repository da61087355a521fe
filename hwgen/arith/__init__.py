"""Combinational arithmetic units of the vector tile (FP16/FP32/INT8), one per module.

Every unit is an ``amaranth.lib.wiring.Component`` with no clock domain and fixed-width
raw-bit ports: inputs ``a``, ``b`` (and ``acc``, ``sub``, ``shift`` where needed), one
output ``o``. FP16 ports are ``unsigned(16)`` IEEE binary16 bits, FP32 ports
``unsigned(32)`` binary32 bits, integer ports ``signed(8)`` / ``signed(32)``. Callers add
their own pipeline registers around the units. ``hwgen.golden`` models each unit bit for
bit; ``hwgen/arith/README.md`` states the rounding, NaN/subnormal policy and error bounds.

=================  ===================================  ===========================
unit               ports                                golden
=================  ===================================  ===========================
Fp16ToFp32         a:16 -> o:32                         fp16_to_fp32
Fp32ToFp16         a:32 -> o:16                         fp32_to_fp16
Fp16MulFp32        a:16, b:16 -> o:32                   fp16_mul_fp32
Fp32Add            a:32, b:32 -> o:32                   fp32_add
Fp16MacFp32        acc:32, a:16, b:16 -> o:32           fp16_mac
Int8Mac            acc:s32, a:s8, b:s8 -> o:s32         int8_mac
Int32ToInt8Sat     a:s32, shift:5 -> o:s8               int32_to_int8_sat
Fp16Add            a:16, b:16, sub:1 -> o:16            vadd_h / vsub_h
Fp16Mul            a:16, b:16 -> o:16                   vmul_h
Fp16Max            a:16, b:16 -> o:16                   vmax_h
Fp16Exp            a:16 -> o:16                         vexp_h
Fp16Rcp            a:16 -> o:16                         vrcp_h
Fp16Rsqrt          a:16 -> o:16                         vrsqrt_h
=================  ===================================  ===========================
"""

from .fp16_elementwise import Fp16Add, Fp16Max, Fp16Mul
from .fp16_exp import Fp16Exp
from .fp16_mac import Fp16MacFp32
from .fp16_mul_fp32 import Fp16MulFp32
from .fp16_rcp import Fp16Rcp
from .fp16_rsqrt import Fp16Rsqrt
from .fp16_to_fp32 import Fp16ToFp32
from .fp32_add import Fp32Add
from .fp32_to_fp16 import Fp32ToFp16
from .int8_mac import Int8Mac
from .int8_narrow import Int32ToInt8Sat

__all__ = [
    "Fp16ToFp32", "Fp32ToFp16", "Fp16MulFp32", "Fp32Add", "Fp16MacFp32",
    "Int8Mac", "Int32ToInt8Sat",
    "Fp16Add", "Fp16Mul", "Fp16Max",
    "Fp16Exp", "Fp16Rcp", "Fp16Rsqrt",
]
