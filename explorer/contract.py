"""The tile contract as pure functions over scalars or numpy arrays.

These are the single definitions of every derived tile/mesh quantity in
``docs/tile_contract.md``. :class:`explorer.design.TileConfig` and
:class:`explorer.design.MeshConfig` expose them as properties (for the RTL generator and
the kernel compiler); the vectorised PPA model calls them on arrays of a design batch.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

__all__ = [
    "VREGS", "ACCS", "VECTOR_FUS", "BRANCH_PENALTY_CYCLES", "ALU_LATENCY", "LOAD_LATENCY",
    "MAC_LATENCY", "VALU_LATENCY", "VNET_LATENCY", "HOP_CYCLES", "HEADER_FLITS", "SRAM_BANK_ROWS",
    "lanes_fp16", "lanes_int8", "acc_bits", "fetch_group", "issue_width",
    "vector_issue_per_cycle", "scalar_issue_per_cycle", "reduce_latency", "mem_rows",
    "mem_banks", "packet_flits", "FLOP_MEMORY_MAX_BITS", "imem_bank_words", "imem_flop_bits",
]

A = TypeVar("A", int, np.ndarray)

#: Architectural vector registers of ``vlen`` bits.
VREGS = 8
#: Accumulator registers of ``lanes_int8`` x 32 bits.
ACCS = 4
#: Vector functional units (VLSU, VMAC, VALU, VNET): at most one op each per cycle.
VECTOR_FUS = 4
#: Bubble after a taken branch or jump (redirect + IMEM read; no prediction).
BRANCH_PENALTY_CYCLES = 2
#: Scalar ALU result latency.
ALU_LATENCY = 1
#: Scalar and vector load latency (synchronous SRAM read + writeback).
LOAD_LATENCY = 2
#: VMAC multiply pipeline depth before the single-cycle in-place accumulate.
MAC_LATENCY = 3
#: Element-wise FP16 ops and the exp/rcp/rsqrt helpers.
VALU_LATENCY = 4
#: vrecv: the popped vector is written at the end of its issue cycle.
VNET_LATENCY = 1
#: Cycles per router hop of a head flit (input register + output register).
HOP_CYCLES = 2
#: Header flits per packet.
HEADER_FLITS = 1
#: Rows of one SRAM/ROM bank (a typical compiled single-port macro is 1-4 K words deep).
SRAM_BANK_ROWS = 1024


def _min(a: A, b: A) -> A:
    return np.minimum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else min(a, b)


def _max(a: A, b: A) -> A:
    return np.maximum(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else max(a, b)


def lanes_fp16(vlen: A) -> A:
    """FP16 multiply lanes (FP32 accumulate)."""
    return vlen // 16


def lanes_int8(vlen: A) -> A:
    """INT8 multiply lanes (INT32 accumulate)."""
    return vlen // 8


def acc_bits(vlen: A) -> A:
    """Bits of one accumulator register."""
    return lanes_int8(vlen) * 32


def fetch_group(fetch: A, stations: A) -> A:
    """Instructions enqueued per fetch cycle: at most half the issue queue (at least one).

    A group enters the queue only when it fits whole. With room for a single group, every
    partially issued cycle leaves the queue unable to take the next group, and the cycle
    after issues only the leftover: measured on the ISS (= RTL), element-wise kernels on
    queues shorter than two groups ran 5-22 % slower than the issue model that assumes a
    full queue, which holds to <= 6.3 % once the queue holds two groups
    (``docs/tile_contract.md``). So the hardware caps the group at ``stations // 2``.
    """
    return _min(fetch, _max(stations // 2, 1))


def issue_width(fetch: A, stations: A, xdp: A, vdp: A) -> A:
    """Instructions issued per cycle at most (in order, from the queue head)."""
    return _min(fetch_group(fetch, stations), xdp + vdp)


def vector_issue_per_cycle(fetch: A, stations: A, xdp: A, vdp: A) -> A:
    """Vector instructions issued per cycle at most."""
    return _min(_min(vdp, VECTOR_FUS), issue_width(fetch, stations, xdp, vdp))


def scalar_issue_per_cycle(fetch: A, stations: A, xdp: A, vdp: A, xr_wp: A) -> A:
    """Scalar instructions issued per cycle at most (one ALU per scalar dispatch port)."""
    return _min(_min(xdp, xr_wp), issue_width(fetch, stations, xdp, vdp))


def reduce_latency(vlen: A) -> A:
    """Lane-reduction tree of an accumulator: 1 + ceil(log2(lanes_fp16)) levels (>= 2)."""
    lanes = lanes_fp16(vlen)
    if isinstance(lanes, np.ndarray):
        return 1 + np.maximum(1, np.ceil(np.log2(lanes)).astype(np.int64))
    return 1 + max(1, (int(lanes) - 1).bit_length())


def mem_rows(kib: A, port_bits: A) -> A:
    """Rows of ``port_bits`` in a memory of ``kib`` KiB."""
    return kib * 1024 * 8 // port_bits


def mem_banks(kib: A, port_bits: A) -> A:
    """Banks of at most :data:`SRAM_BANK_ROWS` rows (0 for an empty memory)."""
    return -(-mem_rows(kib, port_bits) // SRAM_BANK_ROWS)


#: Memories of at most this many bits are built from flip-flops; larger ones are SRAM/ROM
#: macros (OpenROAD-flow-scripts' SYNTH_MEMORY_MAX_BITS default, downstream.md). Both the
#: RTL flow (hwgen) and the area model follow it.
FLOP_MEMORY_MAX_BITS = 4096


def imem_bank_words(imem_kib: A, fetch: A) -> A:
    """32-bit words per IMEM bank: IMEM is interleaved over ``fetch`` banks, one per slot."""
    return -(-(imem_kib * 256) // fetch)


def imem_flop_bits(imem_kib: A, fetch: A) -> A:
    """Bits of IMEM built from flip-flops: all its banks' bits when a bank holds at most
    :data:`FLOP_MEMORY_MAX_BITS`, else 0 (the banks are macros)."""
    words = imem_bank_words(imem_kib, fetch)
    small = words * 32 <= FLOP_MEMORY_MAX_BITS
    bits = fetch * words * 32
    if isinstance(small, np.ndarray):
        return np.where(small, bits, 0)
    return bits if small else 0


def packet_flits(payload_bits: A, flit_bits: A) -> A:
    """Flits of a packet carrying ``payload_bits`` (header included)."""
    return HEADER_FLITS + -(-payload_bits // flit_bits)
