"""The design point: tile classes, mesh, memory, clock and placement (schema v1).

One frozen dataclass per level, validated on construction, round-tripping to JSON.
Everything downstream (PPA model, RTL generator, kernel compiler, simulator) reads
these objects; :meth:`Design.from_json` is the only loader.

The *tile contract* of ``docs/tile_contract.md`` lives here as derived properties of
:class:`TileConfig` and :class:`MeshConfig` (lanes, issue width, port widths, pipeline
latencies, hop latency). The analytical model, the Amaranth generator and the kernel
compiler read these properties and never re-derive them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from . import contract as C
from .errors import InputError

__all__ = [
    "SCHEMA_VERSION",
    "TileConfig",
    "MeshConfig",
    "MemoryConfig",
    "TileGroup",
    "Placement",
    "Design",
    "OFFCHIP_KINDS",
]

SCHEMA_VERSION = 1

#: Off-chip memory kinds a design may name; their figures live in the node data.
OFFCHIP_KINDS = ("lpddr4x", "lpddr5", "lpddr5x", "hbm2e", "hbm3")

SRAM_BANK_ROWS = C.SRAM_BANK_ROWS


def _is_pow2(x: int) -> bool:
    return x > 0 and x & (x - 1) == 0


def _check_int(owner: str, name: str, value: Any, lo: int, hi: int, *, pow2: bool = False,
               multiple_of: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{owner}.{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{owner}.{name} must be between {lo} and {hi}, not {value}")
    if pow2 and not _is_pow2(value):
        raise ValueError(f"{owner}.{name} must be a power of two, not {value}")
    if multiple_of is not None and value % multiple_of:
        raise ValueError(f"{owner}.{name} must be a multiple of {multiple_of}, not {value}")


def _check_number(owner: str, name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}.{name} must be a number, not {value!r}")
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ValueError(f"{owner}.{name} must be between {lo} and {hi}, not {value}")


def _check_keys(owner: str, data: Mapping[str, Any], allowed: Iterable[str],
                required: Iterable[str]) -> None:
    if not isinstance(data, Mapping):
        raise TypeError(f"{owner} must be a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValueError(f"{owner} has unknown field {unknown[0]!r}")
    missing = [k for k in required if k not in data]
    if missing:
        raise ValueError(f"{owner} is missing field {missing[0]!r}")


@dataclass(frozen=True)
class TileConfig:
    """One tile class: a RISC-V vector core with local memories and a router port.

    Parameters (ranges from the source paper's Tab. 7, ../shared/reference/seed_paper.md §4.1)
    ----------
    fetch : int
        Instructions fetched per cycle, 1-16.
    vlen : int
        Vector register length in bits, a power of two in 128-2048.
    stations : int
        Issue-queue entries (the paper's reservation stations), 1-32.
    xdp, vdp : int
        Scalar / vector dispatch ports (instructions issued per cycle per class), 1-16.
    xr_wp, vr_wp : int
        Scalar / vector register-file write ports, 1-16.
    dmem_kib : int
        Data SRAM, a power of two in 16-512 KiB.
    imem_kib : int
        Instruction SRAM, a power of two in 1-128 KiB.
    wmem_kib : int
        Weight memory in KiB, a multiple of 16 in 0-262144 (0 when weights live off chip).
    wmem_kind : str
        ``"rom"`` (baked with the model, the paper's choice) or ``"sram"`` (loadable).
    """

    fetch: int = 2
    vlen: int = 512
    stations: int = 8
    xdp: int = 1
    vdp: int = 2
    xr_wp: int = 1
    vr_wp: int = 1
    dmem_kib: int = 64
    imem_kib: int = 8
    wmem_kib: int = 256
    wmem_kind: str = "rom"

    def __post_init__(self) -> None:
        o = "TileConfig"
        _check_int(o, "fetch", self.fetch, 1, 16)
        _check_int(o, "vlen", self.vlen, 128, 2048, pow2=True)
        _check_int(o, "stations", self.stations, 1, 32)
        for name in ("xdp", "vdp", "xr_wp", "vr_wp"):
            _check_int(o, name, getattr(self, name), 1, 16)
        _check_int(o, "dmem_kib", self.dmem_kib, 16, 512, pow2=True)
        _check_int(o, "imem_kib", self.imem_kib, 1, 128, pow2=True)
        _check_int(o, "wmem_kib", self.wmem_kib, 0, 262144, multiple_of=16)
        if self.wmem_kind not in ("rom", "sram"):
            raise ValueError(f"TileConfig.wmem_kind must be 'rom' or 'sram', not {self.wmem_kind!r}")

    # --- tile contract (definitions in explorer.contract) ----------------------------
    @property
    def lanes_fp16(self) -> int:
        """FP16 multiply lanes (FP32 accumulate) in the vector MAC unit."""
        return C.lanes_fp16(self.vlen)

    @property
    def lanes_int8(self) -> int:
        """INT8 multiply lanes (INT32 accumulate) in the vector MAC unit."""
        return C.lanes_int8(self.vlen)

    @property
    def vregs(self) -> int:
        """Architectural vector registers of ``vlen`` bits."""
        return C.VREGS

    @property
    def accs(self) -> int:
        """Accumulator registers, each ``lanes_int8`` x 32 bits (FP16 uses the low half)."""
        return C.ACCS

    @property
    def acc_bits(self) -> int:
        """Bits of one accumulator register."""
        return C.acc_bits(self.vlen)

    @property
    def fetch_group(self) -> int:
        """Instructions enqueued per fetch cycle: at most half the issue queue (at least one)."""
        return C.fetch_group(self.fetch, self.stations)

    @property
    def issue_width(self) -> int:
        """Instructions issued per cycle at most (in order, from the queue head)."""
        return C.issue_width(self.fetch, self.stations, self.xdp, self.vdp)

    @property
    def vector_fus(self) -> int:
        """Vector functional units: VLSU, VMAC, VALU, VNET (at most one op each per cycle)."""
        return C.VECTOR_FUS

    @property
    def vector_issue_per_cycle(self) -> int:
        """Vector instructions issued per cycle at most."""
        return C.vector_issue_per_cycle(self.fetch, self.stations, self.xdp, self.vdp)

    @property
    def scalar_issue_per_cycle(self) -> int:
        """Scalar instructions issued per cycle at most (one ALU per scalar dispatch port)."""
        return C.scalar_issue_per_cycle(self.fetch, self.stations, self.xdp, self.vdp, self.xr_wp)

    @property
    def imem_port_bits(self) -> int:
        """IMEM read width: ``fetch`` 32-bit words, interleaved over ``fetch`` banks."""
        return 32 * self.fetch

    @property
    def imem_words(self) -> int:
        """32-bit instruction words in IMEM."""
        return self.imem_kib * 1024 // 4

    @property
    def imem_bank_words(self) -> int:
        """32-bit words per IMEM bank (one bank per fetch slot, the last rows may be unused)."""
        return C.imem_bank_words(self.imem_kib, self.fetch)

    @property
    def branch_penalty_cycles(self) -> int:
        """Bubble after a taken branch or jump (redirect + IMEM read; no prediction)."""
        return C.BRANCH_PENALTY_CYCLES

    @property
    def dmem_port_bits(self) -> int:
        """DMEM read/write width: one vector register per cycle."""
        return self.vlen

    @property
    def dmem_rows(self) -> int:
        """Rows of ``dmem_port_bits`` in DMEM."""
        return C.mem_rows(self.dmem_kib, self.dmem_port_bits)

    @property
    def dmem_banks(self) -> int:
        """SRAM banks DMEM is split into (each at most ``SRAM_BANK_ROWS`` rows)."""
        return C.mem_banks(self.dmem_kib, self.dmem_port_bits)

    @property
    def wmem_port_bits(self) -> int:
        """WMEM read width: one weight vector per cycle, streamed into the MAC unit."""
        return self.vlen

    @property
    def wmem_rows(self) -> int:
        """Rows of ``wmem_port_bits`` in WMEM."""
        return C.mem_rows(self.wmem_kib, self.wmem_port_bits)

    @property
    def wmem_banks(self) -> int:
        """SRAM/ROM banks WMEM is split into (0 when the tile has no WMEM)."""
        return C.mem_banks(self.wmem_kib, self.wmem_port_bits)

    @property
    def alu_latency(self) -> int:
        """Scalar ALU result latency (cycles from issue until a dependent may issue)."""
        return C.ALU_LATENCY

    @property
    def load_latency(self) -> int:
        """Scalar and vector load latency (synchronous SRAM read + writeback)."""
        return C.LOAD_LATENCY

    @property
    def mac_latency(self) -> int:
        """VMAC: multiply pipeline depth before the in-place accumulate.

        Back-to-back VMACs into the same accumulator issue every cycle (the FP32/INT32
        accumulate is single-cycle and in place); reading an accumulator waits this long.
        """
        return C.MAC_LATENCY

    @property
    def valu_latency(self) -> int:
        """Element-wise FP16 ops and the exp/rcp/rsqrt helpers."""
        return C.VALU_LATENCY

    @property
    def vnet_latency(self) -> int:
        """vrecv: cycles from issue until the received vector is readable."""
        return C.VNET_LATENCY

    @property
    def reduce_latency(self) -> int:
        """Lane reduction tree of an accumulator into one scalar."""
        return C.reduce_latency(self.vlen)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TileConfig:
        names = [f.name for f in fields(cls)]
        _check_keys("TileConfig", data, names, names)
        return cls(**dict(data))

    def __str__(self) -> str:
        return (f"F{self.fetch}-V{self.vlen}-S{self.stations}-D{self.dmem_kib}"
                f"-I{self.imem_kib}-W{self.wmem_kib}{self.wmem_kind[0]}")


@dataclass(frozen=True)
class MeshConfig:
    """A rows x cols mesh of tiles drawn from a few tile classes.

    Parameters
    ----------
    rows, cols : int
        Mesh size, 1-64 each.
    tile_classes : tuple[TileConfig, ...]
        The distinct tile configurations (1-16 classes).
    class_grid : tuple[tuple[int, ...], ...]
        ``class_grid[r][c]`` is the index into ``tile_classes`` of the tile at (r, c).
    flit_bits : int
        NoC link / flit width, a power of two in 64-8192.
    """

    rows: int
    cols: int
    tile_classes: tuple[TileConfig, ...]
    class_grid: tuple[tuple[int, ...], ...]
    flit_bits: int = 512

    def __post_init__(self) -> None:
        o = "MeshConfig"
        _check_int(o, "rows", self.rows, 1, 64)
        _check_int(o, "cols", self.cols, 1, 64)
        _check_int(o, "flit_bits", self.flit_bits, 64, 8192, pow2=True)
        if not isinstance(self.tile_classes, tuple) or not 1 <= len(self.tile_classes) <= 16:
            raise ValueError("MeshConfig.tile_classes must be a tuple of 1 to 16 TileConfig")
        for t in self.tile_classes:
            if not isinstance(t, TileConfig):
                raise TypeError(f"MeshConfig.tile_classes must hold TileConfig, not {t!r}")
        if (not isinstance(self.class_grid, tuple) or len(self.class_grid) != self.rows
                or any(not isinstance(r, tuple) or len(r) != self.cols for r in self.class_grid)):
            raise ValueError(f"MeshConfig.class_grid must be {self.rows} rows of {self.cols} class indices")
        used = set()
        for row in self.class_grid:
            for k in row:
                if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(self.tile_classes):
                    raise ValueError(f"MeshConfig.class_grid holds class index {k!r}, "
                                     f"not in 0..{len(self.tile_classes) - 1}")
                used.add(k)
        if len(used) != len(self.tile_classes):
            raise ValueError("MeshConfig.tile_classes has a class no tile uses")

    @classmethod
    def uniform(cls, rows: int, cols: int, tile: TileConfig, flit_bits: int = 512) -> MeshConfig:
        return cls(rows, cols, (tile,), tuple((0,) * cols for _ in range(rows)), flit_bits)

    @property
    def n_tiles(self) -> int:
        return self.rows * self.cols

    def tile_at(self, r: int, c: int) -> TileConfig:
        return self.tile_classes[self.class_grid[r][c]]

    def class_counts(self) -> tuple[int, ...]:
        counts = [0] * len(self.tile_classes)
        for row in self.class_grid:
            for k in row:
                counts[k] += 1
        return tuple(counts)

    # --- tile contract: network -------------------------------------------------------
    @property
    def hop_cycles(self) -> int:
        """Cycles per router hop for a head flit (input register + output register)."""
        return C.HOP_CYCLES

    @property
    def header_flits(self) -> int:
        """Flits of header per packet (destination, kind, length, address)."""
        return C.HEADER_FLITS

    def packet_flits(self, payload_bits: int) -> int:
        """Flits of a packet carrying ``payload_bits`` (header included)."""
        return C.packet_flits(payload_bits, self.flit_bits)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows, "cols": self.cols, "flit_bits": self.flit_bits,
            "tile_classes": [t.to_dict() for t in self.tile_classes],
            "class_grid": [list(r) for r in self.class_grid],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MeshConfig:
        names = ("rows", "cols", "flit_bits", "tile_classes", "class_grid")
        _check_keys("MeshConfig", data, names, names)
        if not isinstance(data["tile_classes"], list):
            raise TypeError("MeshConfig.tile_classes must be a list")
        if not isinstance(data["class_grid"], list) or any(not isinstance(r, list) for r in data["class_grid"]):
            raise TypeError("MeshConfig.class_grid must be a list of lists")
        return cls(rows=data["rows"], cols=data["cols"], flit_bits=data["flit_bits"],
                   tile_classes=tuple(TileConfig.from_dict(t) for t in data["tile_classes"]),
                   class_grid=tuple(tuple(r) for r in data["class_grid"]))


@dataclass(frozen=True)
class MemoryConfig:
    """Where weights live, and the off-chip memory (if any).

    Parameters
    ----------
    weights : str
        ``"on_die"`` (per-tile WMEM, the paper's choice) or ``"off_chip"`` (streamed by DMA).
    offchip : str or None
        Off-chip memory kind (one of :data:`OFFCHIP_KINDS`) or None for none at all.
    channels : int
        Off-chip channels (LPDDR) or stacks (HBM); 0 when ``offchip`` is None.
    """

    weights: str = "on_die"
    offchip: str | None = None
    channels: int = 0

    def __post_init__(self) -> None:
        if self.weights not in ("on_die", "off_chip"):
            raise ValueError(f"MemoryConfig.weights must be 'on_die' or 'off_chip', not {self.weights!r}")
        if self.offchip is not None and self.offchip not in OFFCHIP_KINDS:
            raise ValueError(f"MemoryConfig.offchip must be one of {', '.join(OFFCHIP_KINDS)} "
                             f"or null, not {self.offchip!r}")
        _check_int("MemoryConfig", "channels", self.channels, 0, 64)
        if (self.offchip is None) != (self.channels == 0):
            raise ValueError("MemoryConfig.channels must be 0 exactly when offchip is null")
        if self.weights == "off_chip" and self.offchip is None:
            raise ValueError("MemoryConfig.weights is 'off_chip' but no off-chip memory is configured")

    def to_dict(self) -> dict[str, Any]:
        return {"weights": self.weights, "offchip": self.offchip, "channels": self.channels}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MemoryConfig:
        names = ("weights", "offchip", "channels")
        _check_keys("MemoryConfig", data, names, ("weights",))
        return cls(**dict(data))


@dataclass(frozen=True)
class TileGroup:
    """A set of tiles of one class that shares the ops placed on it (split evenly)."""

    tiles: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not isinstance(self.tiles, tuple) or not self.tiles:
            raise ValueError("TileGroup.tiles must be a non-empty tuple of (row, col)")
        for t in self.tiles:
            if (not isinstance(t, tuple) or len(t) != 2
                    or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in t)):
                raise ValueError(f"TileGroup.tiles holds {t!r}, not a (row, col) pair")
        if len(set(self.tiles)) != len(self.tiles):
            raise ValueError("TileGroup.tiles lists a tile twice")

    def __len__(self) -> int:
        return len(self.tiles)


@dataclass(frozen=True)
class Placement:
    """Operators mapped to tile groups; groups form a pipeline in list order.

    ``op_group[name]`` is the index in ``groups`` of the group executing op ``name`` of the
    workload graph named ``workload``. Ops on one group run one after another, each split
    evenly over the group's tiles; different groups work concurrently on different tokens
    (or micro-batches) as pipeline stages.
    """

    workload: str
    groups: tuple[TileGroup, ...]
    op_group: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.workload, str) or not self.workload:
            raise ValueError("Placement.workload must name the workload the ops belong to")
        if not isinstance(self.groups, tuple) or not self.groups:
            raise ValueError("Placement.groups must be a non-empty tuple of TileGroup")
        seen: set[tuple[int, int]] = set()
        for g in self.groups:
            if not isinstance(g, TileGroup):
                raise TypeError(f"Placement.groups must hold TileGroup, not {g!r}")
            if seen & set(g.tiles):
                raise ValueError("Placement.groups overlap: a tile belongs to two groups")
            seen |= set(g.tiles)
        for name, gi in self.op_group.items():
            if isinstance(gi, bool) or not isinstance(gi, int) or not 0 <= gi < len(self.groups):
                raise ValueError(f"Placement.op_group[{name!r}] = {gi!r} is not a group index")
        # A frozen dataclass may still hold a mutable dict; freeze it for hashing safety.
        object.__setattr__(self, "op_group", dict(self.op_group))

    def to_dict(self) -> dict[str, Any]:
        return {"workload": self.workload,
                "groups": [[list(t) for t in g.tiles] for g in self.groups],
                "op_group": dict(sorted(self.op_group.items()))}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Placement:
        names = ("workload", "groups", "op_group")
        _check_keys("Placement", data, names, names)
        groups = data["groups"]
        if not isinstance(groups, list) or any(not isinstance(g, list) for g in groups):
            raise TypeError("Placement.groups must be a list of lists of [row, col]")
        if not isinstance(data["op_group"], Mapping):
            raise TypeError("Placement.op_group must be an object mapping op names to groups")
        return cls(workload=data["workload"],
                   groups=tuple(TileGroup(tuple(tuple(t) if isinstance(t, list) else t for t in g))
                                for g in groups),
                   op_group=dict(data["op_group"]))


@dataclass(frozen=True)
class Design:
    """A complete design point: node, mesh, memory, clock, voltage and placement.

    Parameters
    ----------
    name : str
        Free-form identifier (used for Verilog module and file names after sanitising).
    node : str
        Technology node name (``"3nm"`` ... ``"28nm"``); resolved against the node data.
    mesh : MeshConfig
    memory : MemoryConfig
    clock_mhz : float
        Core clock, 1-5000 MHz; must not exceed the node's fmax at ``vdd_v``.
    vdd_v : float or None
        Supply voltage; None means the node's nominal Vdd.
    placement : Placement or None
        Op -> tile-group mapping; None lets the default placer decide.
    """

    name: str
    node: str
    mesh: MeshConfig
    memory: MemoryConfig = MemoryConfig()
    clock_mhz: float = 1000.0
    vdd_v: float | None = None
    placement: Placement | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("Design.name must be a non-empty string")
        if not isinstance(self.node, str):
            raise TypeError(f"Design.node must be a string, not {self.node!r}")
        if not isinstance(self.mesh, MeshConfig):
            raise TypeError("Design.mesh must be a MeshConfig")
        if not isinstance(self.memory, MemoryConfig):
            raise TypeError("Design.memory must be a MemoryConfig")
        _check_number("Design", "clock_mhz", self.clock_mhz, 1.0, 5000.0)
        if self.vdd_v is not None:
            _check_number("Design", "vdd_v", self.vdd_v, 0.3, 1.5)
        if self.placement is not None:
            if not isinstance(self.placement, Placement):
                raise TypeError("Design.placement must be a Placement or None")
            for gi, g in enumerate(self.placement.groups):
                for r, c in g.tiles:
                    if r >= self.mesh.rows or c >= self.mesh.cols:
                        raise ValueError(f"Placement group {gi} names tile ({r}, {c}) outside "
                                         f"the {self.mesh.rows}x{self.mesh.cols} mesh")
                classes = {self.mesh.class_grid[r][c] for r, c in g.tiles}
                if len(classes) != 1:
                    raise ValueError(f"Placement group {gi} mixes tile classes {sorted(classes)}")

    def with_(self, **changes: Any) -> Design:
        """A copy with fields replaced (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "name": self.name,
            "node": self.node,
            "clock_mhz": self.clock_mhz,
            "vdd_v": self.vdd_v,
            "mesh": self.mesh.to_dict(),
            "memory": self.memory.to_dict(),
            "placement": None if self.placement is None else self.placement.to_dict(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Design:
        names = ("schema_version", "name", "node", "clock_mhz", "vdd_v", "mesh", "memory", "placement")
        _check_keys("Design", data, names, ("schema_version", "name", "node", "mesh"))
        if data["schema_version"] != SCHEMA_VERSION:
            raise ValueError(f"Design.schema_version must be {SCHEMA_VERSION}, "
                             f"not {data['schema_version']!r}")
        placement = data.get("placement")
        return cls(
            name=data["name"], node=data["node"],
            mesh=MeshConfig.from_dict(data["mesh"]),
            memory=MemoryConfig.from_dict(data.get("memory", {"weights": "on_die"})),
            clock_mhz=data.get("clock_mhz", 1000.0),
            vdd_v=data.get("vdd_v"),
            placement=None if placement is None else Placement.from_dict(placement),
        )

    @classmethod
    def from_json(cls, path: str | Path) -> Design:
        """Load and validate a design file; any problem is one :class:`InputError` line."""
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise InputError(f"cannot read design file {p}: {e.strerror or e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{p}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise InputError(f"{p}: {e}") from None
