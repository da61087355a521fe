"""The NoC packet format: header fields, packet kinds, flit packing (the one definition).

Every link of the mesh, and the host port, carries *flits* of ``MeshConfig.flit_bits``
data bits plus one ``last`` sideband bit that marks the final flit of a packet (routers
switch wormhole packets on it and never parse lengths). A packet is one header flit
(``MeshConfig.header_flits`` == 1) followed by ``ceil(32 * payload_words / flit_bits)``
payload flits (``MeshConfig.packet_flits``).

Header flit (bit 0 = LSB of ``data``; bits 64 and up are reserved and sent as zero)::

    bits    field     meaning
    0-5     dst_col   destination column (0..63)
    6-11    dst_row   destination row (0..63)
    12      dst_host  1: the destination is the host port (dst_row/dst_col are ignored)
    13-18   src_col   source column
    19-24   src_row   source row
    25      src_host  1: the packet was sent by the host
    26-28   kind      Kind (below)
    29-30   sel       MemSel: 0 IMEM, 1 DMEM, 2 WMEM (MEM_WRITE, MEM_READ, READ_REPLY)
    31-37   length    32-bit words: the payload length, except MEM_READ (words requested,
                      no payload) and START (0); at most 127
    38-63   addr      first 32-bit WORD address in the selected memory (byte address / 4)

Payload: 32-bit words packed little-endian into the payload flits, word ``i`` at bits
``32 * (i % (flit_bits // 32))`` of payload flit ``i // (flit_bits // 32)``; unused
bits of the last flit are zero. A VEC payload is the ``vlen``-bit vector itself,
LSB first (``vlen // 32`` words); a DONE payload is one word, the cycle count.

Kinds and who sends them:

* ``MEM_WRITE`` host -> tile: write ``length`` words from ``addr`` on.
* ``MEM_READ`` host -> tile: read ``length`` words from ``addr``; the tile answers
  ``READ_REPLY`` (same sel/addr/length, the words as payload) to the packet's source.
* ``START`` host -> tile: start the core (pc <- 0, cycle counter <- 0).
* ``DONE`` tile -> host: the core halted (``ecall``); payload = cycles since START.
* ``VEC`` tile -> tile: one vector for the receiver's ``vrecv`` FIFO (``vsend``).

The Python helpers here (:class:`Header`, :class:`Packet` and the constructors) build
and parse the same bits; testbenches (amaranth.sim, cocotb) use them and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from amaranth.hdl import unsigned
from amaranth.lib import data, enum, stream

__all__ = [
    "Kind",
    "MemSel",
    "HEADER_FIELDS",
    "HEADER_BITS",
    "COORD_BITS",
    "MAX_LENGTH_WORDS",
    "ADDR_BITS",
    "header_layout",
    "flit_layout",
    "link_signature",
    "Header",
    "Packet",
    "words_per_flit",
    "payload_flits",
    "mem_write",
    "mem_read",
    "start",
    "vec",
]

#: Bits of a row or column coordinate: meshes are at most 64 x 64 (MeshConfig limit).
COORD_BITS = 6

#: (name, bits) from bit 0 upwards; the only place the header layout is written down.
HEADER_FIELDS: tuple[tuple[str, int], ...] = (
    ("dst_col", COORD_BITS),
    ("dst_row", COORD_BITS),
    ("dst_host", 1),
    ("src_col", COORD_BITS),
    ("src_row", COORD_BITS),
    ("src_host", 1),
    ("kind", 3),
    ("sel", 2),
    ("length", 7),
    ("addr", 26),
)

#: Header bits in use; the smallest legal flit (64 bits) holds exactly one header.
HEADER_BITS = sum(w for _, w in HEADER_FIELDS)
assert HEADER_BITS == 64, HEADER_BITS

MAX_LENGTH_WORDS = (1 << dict(HEADER_FIELDS)["length"]) - 1
#: 26-bit word address: 256 MiB per memory, the largest WMEM TileConfig allows.
ADDR_BITS = dict(HEADER_FIELDS)["addr"]


class Kind(enum.Enum, shape=3):
    """Packet kinds (header field ``kind``)."""

    MEM_WRITE = 0
    MEM_READ = 1
    READ_REPLY = 2
    START = 3
    DONE = 4
    VEC = 5


class MemSel(enum.Enum, shape=2):
    """Tile memory selected by MEM_WRITE / MEM_READ (same codes as the core's ``mem.req.sel``)."""

    IMEM = 0
    DMEM = 1
    WMEM = 2


def header_layout() -> data.StructLayout:
    """The header as an Amaranth struct (fields in :data:`HEADER_FIELDS` order from bit 0)."""
    shapes = {"kind": Kind, "sel": MemSel}
    return data.StructLayout({name: shapes.get(name, unsigned(w)) for name, w in HEADER_FIELDS})


def flit_layout(flit_bits: int) -> data.StructLayout:
    """One link beat: ``data`` (flit_bits) then ``last`` (bit ``flit_bits`` of the payload)."""
    _check_flit_bits(flit_bits)
    return data.StructLayout({"data": unsigned(flit_bits), "last": unsigned(1)})


def link_signature(flit_bits: int) -> stream.Signature:
    """A valid/ready link carrying :func:`flit_layout` beats (source-side view)."""
    return stream.Signature(flit_layout(flit_bits))


def words_per_flit(flit_bits: int) -> int:
    """32-bit payload words per flit."""
    _check_flit_bits(flit_bits)
    return flit_bits // 32


def payload_flits(n_words: int, flit_bits: int) -> int:
    """Payload flits of a packet carrying ``n_words`` 32-bit words."""
    return -(-n_words // words_per_flit(flit_bits))


def _check_flit_bits(flit_bits: int) -> None:
    if isinstance(flit_bits, bool) or not isinstance(flit_bits, int):
        raise TypeError(f"flit_bits must be an integer, not {flit_bits!r}")
    if flit_bits < HEADER_BITS or flit_bits & (flit_bits - 1):
        raise ValueError(f"flit_bits must be a power of two of at least {HEADER_BITS}, not {flit_bits}")


@dataclass(frozen=True)
class Header:
    """A decoded header flit. ``addr`` is a word address; ``kind`` and ``sel`` are enums."""

    kind: Kind
    dst_row: int = 0
    dst_col: int = 0
    dst_host: bool = False
    src_row: int = 0
    src_col: int = 0
    src_host: bool = False
    sel: MemSel = MemSel.IMEM
    length: int = 0
    addr: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.kind, Kind):
            raise TypeError(f"Header.kind must be a Kind, not {self.kind!r}")
        if not isinstance(self.sel, MemSel):
            raise TypeError(f"Header.sel must be a MemSel, not {self.sel!r}")
        widths = dict(HEADER_FIELDS)
        for name in ("dst_row", "dst_col", "src_row", "src_col", "length", "addr"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"Header.{name} must be an integer, not {value!r}")
            if not 0 <= value < 1 << widths[name]:
                raise ValueError(f"Header.{name} must be between 0 and {(1 << widths[name]) - 1}, "
                                 f"not {value}")

    def encode(self) -> int:
        """The header flit's data bits as an integer."""
        values = {name: int(getattr(self, name).value if name in ("kind", "sel")
                            else getattr(self, name)) for name, _ in HEADER_FIELDS}
        bits, offset = 0, 0
        for name, width in HEADER_FIELDS:
            bits |= values[name] << offset
            offset += width
        return bits

    @classmethod
    def decode(cls, bits: int) -> Header:
        """Parse a header flit's data bits (reserved bits above 64 are ignored)."""
        values, offset = {}, 0
        for name, width in HEADER_FIELDS:
            values[name] = (bits >> offset) & ((1 << width) - 1)
            offset += width
        try:
            kind = Kind(values.pop("kind"))
            sel = MemSel(values.pop("sel"))
        except ValueError as e:
            raise ValueError(f"not a valid header flit: {e}") from None
        return cls(kind=kind, sel=sel, dst_host=bool(values.pop("dst_host")),
                   src_host=bool(values.pop("src_host")), **values)

    @property
    def payload_words(self) -> int:
        """32-bit words of payload that follow this header."""
        return 0 if self.kind in (Kind.MEM_READ, Kind.START) else self.length


@dataclass(frozen=True)
class Packet:
    """A header plus its payload words (each 0 <= w < 2**32)."""

    header: Header
    words: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "words", tuple(self.words))
        if len(self.words) != self.header.payload_words:
            raise ValueError(f"Packet of kind {self.header.kind.name} with length "
                             f"{self.header.length} needs {self.header.payload_words} payload "
                             f"words, not {len(self.words)}")
        for w in self.words:
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w < 1 << 32:
                raise ValueError(f"Packet payload words must be 32-bit unsigned integers, not {w!r}")

    def flits(self, flit_bits: int) -> list[tuple[int, bool]]:
        """The packet as ``(data, last)`` link beats."""
        wpf = words_per_flit(flit_bits)
        beats = [self.header.encode()]
        for i in range(0, len(self.words), wpf):
            beats.append(sum(w << (32 * k) for k, w in enumerate(self.words[i:i + wpf])))
        return [(d, i == len(beats) - 1) for i, d in enumerate(beats)]

    @classmethod
    def from_flits(cls, beats: Sequence[tuple[int, bool]], flit_bits: int) -> Packet:
        """Parse one packet from its beats; the last beat must be the only one with ``last``."""
        if not beats:
            raise ValueError("a packet has at least a header flit")
        lasts = [bool(last) for _, last in beats]
        if lasts[-1] is not True or any(lasts[:-1]):
            raise ValueError(f"only the final flit may carry last, got {lasts}")
        header = Header.decode(beats[0][0])
        wpf = words_per_flit(flit_bits)
        n = header.payload_words
        if len(beats) - 1 != payload_flits(n, flit_bits):
            raise ValueError(f"{header.kind.name} with {n} payload words needs "
                             f"{payload_flits(n, flit_bits)} payload flits, got {len(beats) - 1}")
        words = [(beats[1 + i // wpf][0] >> (32 * (i % wpf))) & 0xFFFF_FFFF for i in range(n)]
        return cls(header, tuple(words))


def _check_words(words: Iterable[int]) -> tuple[int, ...]:
    words = tuple(words)
    if not 1 <= len(words) <= MAX_LENGTH_WORDS:
        raise ValueError(f"a burst must hold 1 to {MAX_LENGTH_WORDS} words, not {len(words)}")
    return words


def mem_write(dst: tuple[int, int], sel: MemSel, word_addr: int, words: Iterable[int]) -> Packet:
    """Host -> tile ``dst`` = (row, col): write ``words`` from word address ``word_addr`` on."""
    words = _check_words(words)
    return Packet(Header(Kind.MEM_WRITE, dst_row=dst[0], dst_col=dst[1], src_host=True,
                         sel=sel, length=len(words), addr=word_addr), words)


def mem_read(dst: tuple[int, int], sel: MemSel, word_addr: int, n_words: int) -> Packet:
    """Host -> tile ``dst``: request ``n_words`` words from ``word_addr`` (answered by READ_REPLY)."""
    if not 1 <= n_words <= MAX_LENGTH_WORDS:
        raise ValueError(f"a read must request 1 to {MAX_LENGTH_WORDS} words, not {n_words}")
    return Packet(Header(Kind.MEM_READ, dst_row=dst[0], dst_col=dst[1], src_host=True,
                         sel=sel, length=n_words, addr=word_addr))


def start(dst: tuple[int, int]) -> Packet:
    """Host -> tile ``dst``: run the program in IMEM from pc 0."""
    return Packet(Header(Kind.START, dst_row=dst[0], dst_col=dst[1], src_host=True))


def vec(src: tuple[int, int], dst: tuple[int, int], value: int, vlen: int) -> Packet:
    """Tile ``src`` -> tile ``dst``: one ``vlen``-bit vector (as the NI sends it for ``vsend``)."""
    if not 0 <= value < 1 << vlen:
        raise ValueError(f"vector value must fit {vlen} bits")
    words = tuple((value >> (32 * i)) & 0xFFFF_FFFF for i in range(vlen // 32))
    return Packet(Header(Kind.VEC, dst_row=dst[0], dst_col=dst[1], src_row=src[0],
                         src_col=src[1], length=len(words)), words)
