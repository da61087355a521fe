"""A compiled tile program (words, memory images, outputs) and running it on the ISS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from explorer.design import TileConfig
from explorer.workloads.graph import Op
from hwgen.asm import assemble
from hwgen.iss import TileISS

from .layout import Blocked, unpack_fp16

__all__ = ["Output", "TileProgram", "RunOutcome", "run_program"]


@dataclass(frozen=True)
class Output:
    """Where one result lives in DMEM after the run.

    ``layout`` None means a flat array of ``shape`` FP16 elements at ``addr``; a
    :class:`Blocked` layout is unpacked to ``[rows, cols]``.
    """

    name: str
    addr: int
    shape: tuple[int, ...]
    layout: Blocked | None = None
    dtype: str = "fp16"

    def read(self, dmem: np.ndarray) -> np.ndarray:
        """The element patterns (uint16 FP16 or int8) of this output from DMEM bytes."""
        size = 2 if self.dtype == "fp16" else 1
        nbytes = self.layout.nbytes if self.layout is not None else size * int(np.prod(self.shape))
        raw = bytes(dmem[self.addr:self.addr + nbytes])
        flat = unpack_fp16(raw) if size == 2 else np.frombuffer(raw, np.int8).copy()
        return self.layout.unpack(flat) if self.layout is not None else flat.reshape(self.shape)


@dataclass(frozen=True)
class TileProgram:
    """One tile's program for (its share of) one op.

    Members
    -------
    op, tile : Op, TileConfig
    source : str
        The assembly (real instructions only).
    words : tuple[int, ...]
        IMEM image.
    dmem, wmem : bytes
        Initial DMEM / WMEM contents.
    outputs : tuple[Output, ...]
        Result locations in DMEM.
    inputs : Mapping[str, np.ndarray]
        The operand values the images were built from (float64), for the references.
    expected_counts : Mapping[str, int]
        Dynamic instructions per unit (``hwgen.isa.Unit`` names) the loop nest executes.
    loops : Mapping[str, int]
        The loop-nest parameters (unroll factor ``u``, blocks, chunks, ...).
    rx : tuple[bytes, ...]
        Vectors waiting in the receive FIFO at START (B operands streamed from the
        network at full rate, for single-tile runs).
    meta : Mapping[str, object]
        Kernel facts the references need (INT8 shift, column range, constants).
    """

    op: Op
    tile: TileConfig
    source: str
    words: tuple[int, ...]
    dmem: bytes
    wmem: bytes
    outputs: tuple[Output, ...]
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)
    expected_counts: Mapping[str, int] = field(default_factory=dict)
    loops: Mapping[str, int] = field(default_factory=dict)
    n_tiles: int = 1
    tile_index: int = 0
    rx: tuple[bytes, ...] = ()
    meta: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.words) > self.tile.imem_words:
            raise ValueError(f"program has {len(self.words)} words, IMEM holds {self.tile.imem_words}")
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))
        object.__setattr__(self, "expected_counts", MappingProxyType(dict(self.expected_counts)))
        object.__setattr__(self, "loops", MappingProxyType(dict(self.loops)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @classmethod
    def build(cls, op: Op, tile: TileConfig, source: str, **kw) -> TileProgram:
        return cls(op=op, tile=tile, source=source, words=tuple(assemble(source, tile)), **kw)

    @property
    def expected_instructions(self) -> int:
        return int(sum(self.expected_counts.values()))


@dataclass(frozen=True)
class RunOutcome:
    """Result of one ISS run: cycles (timed mode), per-unit counts and outputs (FP16 bits)."""

    cycles: int | None
    instructions: int
    unit_counts: Mapping[str, int]
    outputs: Mapping[str, np.ndarray]


def run_program(prog: TileProgram, *, timed: bool = True, max_cycles: int = 20_000_000) -> RunOutcome:
    """Run ``prog`` on :class:`hwgen.iss.TileISS` (cycle-exact when ``timed``)."""
    iss = TileISS(prog.tile, prog.words, dmem=prog.dmem, wmem=prog.wmem, tile_id=prog.tile_index)
    iss.rx.extend((0, v) for v in prog.rx)
    res = iss.run_timed(max_cycles) if timed else iss.run(max_cycles)
    outs = {o.name: o.read(iss.dmem) for o in prog.outputs}
    return RunOutcome(res.cycles, res.instructions, dict(res.unit_counts), outs)
