"""Kernel compiler: one op (or one tile's share of it) -> a tile program with the model's loop nest.

``compile_op(op, tile, n_tiles=..., tile_index=..., rng=... | data=...)`` dispatches to
:mod:`sim.compiler.gemm` (matmul, attn_qk, attn_av) or :mod:`sim.compiler.elementwise`
(every other kind); :func:`run_program` runs the result on the ISS (cycle-exact).
"""

from __future__ import annotations

import numpy as np

from explorer.design import TileConfig
from explorer.workloads.graph import Op

from .elementwise import compile_elementwise
from .gemm import compile_gemm
from .program import Output, RunOutcome, TileProgram, run_program

__all__ = ["compile_op", "TileProgram", "Output", "RunOutcome", "run_program", "GEMM_KINDS"]

GEMM_KINDS = ("matmul", "attn_qk", "attn_av")


def compile_op(op: Op, tile: TileConfig, *, n_tiles: int = 1, tile_index: int = 0,
               rng: np.random.Generator | None = None, data: dict | None = None,
               share: int = 1, b_source: int | None = None) -> TileProgram:
    """Compile tile ``tile_index``'s share (of ``n_tiles``) of ``op`` for ``tile``.

    Operands are ``data`` (see the kernel modules for shapes) or random from ``rng``
    (seeded default). ``share``: query heads per KV head of attention ops; ``b_source``:
    where a GEMM's B operand comes from (``explorer.ppa.kernels.B_WMEM/B_DMEM/B_NET``).
    """
    if not isinstance(op, Op):
        raise TypeError(f"op must be an Op, not {op!r}")
    if not isinstance(tile, TileConfig):
        raise TypeError(f"tile must be a TileConfig, not {tile!r}")
    if not 0 <= tile_index < n_tiles:
        raise ValueError(f"tile_index must be between 0 and {n_tiles - 1}, not {tile_index}")
    if op.kind in GEMM_KINDS:
        return compile_gemm(op, tile, n_tiles=n_tiles, tile_index=tile_index, share=share,
                            b_source=b_source, rng=rng, data=data)
    return compile_elementwise(op, tile, n_tiles=n_tiles, tile_index=tile_index, rng=rng, data=data)
