"""A mesh of timed tile ISSs joined by a NoC model that follows the tile contract.

``hwgen.iss.Network`` delivers every vector after a fixed latency; :class:`MeshNetwork`
models what the RTL does between a ``vsend`` and the matching ``vrecv``
(``docs/tile_contract.md`` §4, ``hwgen/noc``), cycle by cycle:

* the core's two-entry tx FIFO (``hwgen/tile/vnet.py``): ``vsend`` issues only with room,
  ``ecall`` only once it is empty;
* the network interface (``hwgen/noc/ni.py``) takes the FIFO head the cycle after it is
  written, sends a ``VEC`` packet of ``packet_flits(vlen)`` flits (header the next
  cycle, one payload flit per cycle) and frees the entry with the last flit; it is idle
  for a cycle between packets (``IDLE -> VEC_HDR``), so it injects one packet every
  ``packet_flits + 1`` cycles;
* dimension-ordered XY routing; a head flit is offered on a router's output
  ``hop_cycles`` after its input accepted it (``hop_cycles`` per router passed,
  ``tests/test_noc.py``), body flits follow one per cycle; a router output (link) carries
  one packet at a time, head to tail (wormhole), granted first come first served;
* the receiving NI writes the vector into its ``RX_FIFO_DEPTH``-entry FIFO with the last
  flit, when there is room (else the packet waits, holding the ejection port), and one
  packet per ``packet_flits`` cycles; ``vrecv`` can pop it the next cycle.

Approximation: a packet blocked at its destination holds only the ejection port, not the
links behind it (the kernels here keep receivers draining, so this rarely binds).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from explorer import contract as C
from hwgen._iss_timing import _Timing
from hwgen.isa import Unit, VnetOp
from hwgen.iss import IssError, RunResult, TileISS
from hwgen.noc.ni import RX_FIFO_DEPTH
from hwgen.tile.vnet import TX_FIFO_DEPTH

__all__ = ["MeshNetwork", "GroupRun", "xy_route"]


def xy_route(src: tuple[int, int], dst: tuple[int, int]) -> list[tuple[int, int, str]]:
    """Router outputs a packet takes from ``src`` to ``dst`` (X first, then Y), ending
    with the destination's local output ``l``: ``(row, col, port)`` per router."""
    (r, c), (r1, c1) = src, dst
    ports = []
    while c != c1:
        step = 1 if c1 > c else -1
        ports.append((r, c, "e" if step > 0 else "w"))
        c += step
    while r != r1:
        step = 1 if r1 > r else -1
        ports.append((r, c, "s" if step > 0 else "n"))
        r += step
    ports.append((r, c, "l"))
    return ports


@dataclass
class _Packet:
    dest: int
    data: bytes
    tail: int                      # cycle its last flit reaches the destination NI


@dataclass
class _Node:
    """Per-tile state: tx FIFO (vsend entries), NI injection, ejection queue."""

    tx: deque = field(default_factory=deque)     # (ready_cycle, dest, data)
    tx_pop: deque = field(default_factory=deque)  # cycles at which injected entries leave
    ni_free: int = 0
    inbox: list = field(default_factory=list)     # packets heading here, by tail cycle
    eject_free: int = 0


class _NetTiming(_Timing):
    """The core's issue rules plus the tx FIFO room ``vsend`` and ``ecall`` wait for."""

    def __init__(self, iss: TileISS, net: MeshNetwork, tile_id: int):
        super().__init__(iss)
        self.net, self.id = net, tile_id

    def _can_issue(self, j, s, group) -> bool:
        if not super()._can_issue(j, s, group):
            return False
        if s.unit is Unit.VNET and s.ins.spec.op is VnetOp.SEND:
            return self.net.tx_room(self.id, self.now) > 0
        if s.halt:
            return self.net.tx_empty(self.id, self.now)
        return True


class MeshNetwork:
    """Tiles of a ``rows x cols`` mesh (tile id = row * cols + col), cycle by cycle."""

    def __init__(self, tiles: Sequence[TileISS], rows: int, cols: int, flit_bits: int):
        if len(tiles) != rows * cols:
            raise ValueError(f"a {rows}x{cols} mesh has {rows * cols} tiles, not {len(tiles)}")
        self.tiles, self.rows, self.cols = list(tiles), rows, cols
        self.flits = C.packet_flits(tiles[0].tile.vlen, flit_bits)
        self.nodes = [_Node() for _ in tiles]
        self.port_free: dict[tuple[int, int, str], int] = {}
        self.now = 0
        self.packets = 0
        self.flit_hops = 0
        for i, t in enumerate(self.tiles):
            t.send = self._sender(i)
            t._timing = _NetTiming(t, self, i)

    def pos(self, tile_id: int) -> tuple[int, int]:
        return divmod(tile_id, self.cols)

    def _sender(self, i: int):
        def send(dest: int, data: bytes, cycle: int | None) -> None:
            if not 0 <= dest < len(self.tiles):
                raise IssError(f"vsend to tile {dest}, but the mesh has {len(self.tiles)} tiles")
            self.nodes[i].tx.append(((cycle or 0) + 1, dest, data))
        return send

    def tx_room(self, i: int, now: int) -> int:
        return TX_FIFO_DEPTH - self._tx_count(i, now)

    def tx_empty(self, i: int, now: int) -> bool:
        return self._tx_count(i, now) == 0

    def _tx_count(self, i: int, now: int) -> int:
        n = self.nodes[i]
        while n.tx_pop and n.tx_pop[0] <= now:
            n.tx_pop.popleft()
        return len(n.tx) + len(n.tx_pop)

    def _inject(self, i: int, now: int) -> None:
        n = self.nodes[i]
        if not n.tx or n.ni_free > now or n.tx[0][0] > now:
            return
        _, dest, data = n.tx.popleft()
        f = self.flits
        t = now + 1                                  # header offered to the router
        for port in xy_route(self.pos(i), self.pos(dest)):
            t = max(t + C.HOP_CYCLES, self.port_free.get(port, 0))
            self.port_free[port] = t + f
            self.flit_hops += f
        self.nodes[dest].inbox.append(_Packet(dest, data, t + f - 1))
        self.nodes[dest].inbox.sort(key=lambda p: p.tail)
        n.tx_pop.append(now + f + 1)                # freed with the last flit (end of cycle)
        n.ni_free = now + f + 1                     # then one idle cycle
        self.packets += 1

    def _eject(self, i: int, now: int) -> None:
        n, iss = self.nodes[i], self.tiles[i]
        while (n.inbox and n.inbox[0].tail <= now and n.eject_free <= now
               and len(iss.rx) < RX_FIFO_DEPTH):
            p = n.inbox.pop(0)
            iss.rx.append((now + 1, p.data))         # vrecv may pop it next cycle
            n.eject_free = now + self.flits          # the next packet streams in after it

    def step(self) -> None:
        """End of the current cycle: NIs inject, packets are written into rx FIFOs."""
        for i in range(len(self.tiles)):
            self._inject(i, self.now)
        for i in range(len(self.tiles)):
            self._eject(i, self.now)
        self.now += 1

    def run(self, max_cycles: int = 5_000_000) -> GroupRun:
        """Tick every tile and the network until all tiles halted."""
        running = set(range(len(self.tiles)))
        for _ in range(max_cycles):
            for i in list(running):
                if not self.tiles[i].tick():
                    running.discard(i)
            if not running:
                results = [t.result() for t in self.tiles]
                return GroupRun(results, max(r.cycles for r in results), self.packets,
                                self.flit_hops)
            self.step()
        raise IssError(f"tiles still running after {max_cycles} cycles (deadlock?)")


@dataclass(frozen=True)
class GroupRun:
    """Per-tile results, the group's cycles (START to the last DONE), traffic."""

    results: list[RunResult]
    cycles: int
    packets: int
    flit_hops: int
