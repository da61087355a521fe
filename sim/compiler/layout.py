"""Data layouts of kernel operands in DMEM and WMEM, and FP16/INT8 packing.

Conventions (``docs/sim.md``):

* A vector is one DMEM row of ``vlen/8`` bytes; element *i* of an FP16 vector at bytes
  2i, 2i+1, little-endian (``docs/isa.md``).
* **Blocked activations** ``[rows, cols]`` (GEMM inputs and outputs, row-wise ops): rows
  in groups of ``A`` (= accumulators), the last group holding the rest; inside group g
  the vectors go block by block, the group's rows adjacent:
  vector (row r, column block j) at ``base_g + (j * R_g + r % A) * row_bytes`` with
  ``R_g`` rows in group g and ``base_g = g * A * blocks * row_bytes``. One row (decode)
  is a plain array of vectors. A kernel streaming R rows then needs one pointer.
* **B operand** of a GEMM ``[red, cols]`` (weights in WMEM for ``vmacw``/``vldw``, K^T
  or V in DMEM): column chunks of L, each chunk the ``red`` rows of its L columns:
  row (chunk c, k) = ``c * red_padded + k``. One WMEM row = the L output columns of one k.
* Element-wise operands: flat arrays of vectors (zero padded to whole vectors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwgen import golden as g

__all__ = ["ceil_div", "pack_fp16", "unpack_fp16", "Blocked", "b_operand_rows", "Allocator"]


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def pack_fp16(values: np.ndarray) -> bytes:
    """FP16 bit patterns (uint16) or float values as little-endian bytes."""
    a = np.asarray(values)
    bits = a if a.dtype == np.uint16 else g.fp16_bits(a)
    return bits.astype("<u2").tobytes()


def unpack_fp16(data: bytes | np.ndarray) -> np.ndarray:
    """Little-endian FP16 bytes -> uint16 bit patterns."""
    return np.frombuffer(bytes(data), "<u2").astype(np.uint16)


@dataclass(frozen=True)
class Blocked:
    """The blocked activation layout of a ``[rows, cols]`` matrix of ``elem_bytes`` elements."""

    rows: int
    cols: int
    lanes: int
    row_bytes: int
    group: int = 4

    @property
    def blocks(self) -> int:
        return ceil_div(self.cols, self.lanes)

    @property
    def nbytes(self) -> int:
        return self.rows * self.blocks * self.row_bytes

    def group_rows(self, gi: int) -> int:
        return min(self.group, self.rows - gi * self.group)

    def group_base(self, gi: int) -> int:
        return gi * self.group * self.blocks * self.row_bytes

    def vector_offset(self, r: int, j: int) -> int:
        gi = r // self.group
        return self.group_base(gi) + (j * self.group_rows(gi) + r % self.group) * self.row_bytes

    def pack(self, bits: np.ndarray) -> np.ndarray:
        """``[rows, cols]`` element patterns -> flat element array in memory order."""
        per = self.row_bytes // (bits.dtype.itemsize)
        out = np.zeros(self.nbytes // bits.dtype.itemsize, bits.dtype)
        padded = np.zeros((self.rows, self.blocks * self.lanes), bits.dtype)
        padded[:, :self.cols] = bits
        for r in range(self.rows):
            for j in range(self.blocks):
                o = self.vector_offset(r, j) // bits.dtype.itemsize
                out[o:o + self.lanes] = padded[r, j * self.lanes:(j + 1) * self.lanes]
        del per
        return out

    def unpack(self, flat: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`pack` (flat element array from the layout's base)."""
        out = np.zeros((self.rows, self.blocks * self.lanes), flat.dtype)
        for r in range(self.rows):
            for j in range(self.blocks):
                o = self.vector_offset(r, j) // flat.dtype.itemsize
                out[r, j * self.lanes:(j + 1) * self.lanes] = flat[o:o + self.lanes]
        return out[:, :self.cols]


def b_operand_rows(bits: np.ndarray, lanes: int, red_padded: int) -> np.ndarray:
    """``[red, cols]`` -> ``[chunks * red_padded, lanes]``: row ``c * red_padded + k`` holds
    columns ``c*L .. c*L+L-1`` of row k (zero padded)."""
    red, cols = bits.shape
    chunks = ceil_div(cols, lanes)
    out = np.zeros((chunks, red_padded, lanes), bits.dtype)
    padded = np.zeros((red, chunks * lanes), bits.dtype)
    padded[:, :cols] = bits
    out[:, :red, :] = padded.reshape(red, chunks, lanes).transpose(1, 0, 2)
    return out.reshape(chunks * red_padded, lanes)


class Allocator:
    """Bump allocator of one memory in whole rows; raises when the memory is full."""

    def __init__(self, name: str, size_bytes: int, row_bytes: int):
        self.name, self.size, self.row = name, size_bytes, row_bytes
        self.image = bytearray()

    def put(self, data: bytes, *, pad_rows: int = 0) -> int:
        """Place ``data`` at the next row boundary (plus ``pad_rows`` zero rows after it
        for loads that run one block ahead); return its byte address."""
        addr = len(self.image)
        total = ceil_div(len(data), self.row) * self.row + pad_rows * self.row
        if addr + total > self.size:
            raise ValueError(f"{self.name} overflow: {addr + total} bytes needed, "
                             f"{self.size} available")
        self.image += bytes(data) + bytes(total - len(data))
        return addr

    def reserve(self, nbytes: int, *, pad_rows: int = 0) -> int:
        return self.put(bytes(nbytes), pad_rows=pad_rows)
