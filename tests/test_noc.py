# amaranth: UnusedElaboratable=no
"""Router and network-interface unit tests in amaranth.sim (async testbenches)."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from explorer.design import MeshConfig, TileConfig
from hwgen.mesh import connect_grid
from hwgen.noc.packet import (
    Header,
    Kind,
    MemSel,
    Packet,
    link_signature,
    mem_read,
    mem_write,
    start,
    vec,
)
from hwgen.noc.router import ALLOWED_TURNS, PORTS, Router

# --- stream drivers shared by the NoC and mesh tests ---------------------------------------


async def drive_beats(ctx, link, beats, *, rng=None, idle=0.0, log=None, limit=20000):
    """Offer ``(data, last)`` beats on ``link`` (valid/ready), with random idle cycles.

    Idle cycles are inserted only *between* beats (valid never drops while a beat waits,
    as the stream protocol demands). Appends the handshake cycle of every beat to ``log``.
    Gives up after ``limit`` cycles (a wedged network must fail the test, not hang it).
    """
    cycle = 0
    for data, last in beats:
        while rng is not None and rng.random() < idle:
            ctx.set(link.valid, 0)
            await ctx.tick()
            cycle += 1
        ctx.set(link.valid, 1)
        ctx.set(link.payload, {"data": data, "last": int(last)})
        while cycle < limit:
            _, _, ready = await ctx.tick().sample(link.ready)
            cycle += 1
            if ready:
                break
        else:
            break
        if log is not None:
            log.append(cycle - 1)
    ctx.set(link.valid, 0)


async def collect_beats(ctx, link, out, *, done, rng=None, stall=0.0, limit=20000):
    """Accept beats on ``link`` with random backpressure until ``done()`` or ``limit`` cycles.

    Appends ``(cycle, data, last)`` to ``out``.
    """
    for cycle in range(limit):
        if done():
            return
        ready = not (rng is not None and rng.random() < stall)
        ctx.set(link.ready, int(ready))
        _, _, valid, payload = await ctx.tick().sample(link.valid, link.payload)
        if valid and ready:
            out.append((cycle, payload.data, bool(payload.last)))
    ctx.set(link.ready, 0)


def sink_bench(link, out, **kwargs):
    """An amaranth.sim testbench function running :func:`collect_beats` on ``link``."""
    async def bench(ctx):
        await collect_beats(ctx, link, out, **kwargs)
    return bench


def split_packets(beats, flit_bits):
    """Group collected ``(cycle, data, last)`` beats into packets (checks framing)."""
    packets, current = [], []
    for _, data, last in beats:
        current.append((data, last))
        if last:
            packets.append(Packet.from_flits(current, flit_bits))
            current = []
    assert not current, "a packet was cut short"
    return packets


def run(dut, *benches):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in benches:
        sim.add_testbench(bench)
    sim.run()


def random_packet(rng, dst, src=(0, 0), *, max_words=12):
    n = rng.randint(1, max_words)
    words = [rng.getrandbits(32) for _ in range(n)]
    return Packet(Header(Kind.MEM_WRITE, dst_row=dst[0], dst_col=dst[1], src_row=src[0],
                         src_col=src[1], sel=MemSel.DMEM, length=n,
                         addr=rng.getrandbits(16)), tuple(words))


# --- a single router ---------------------------------------------------------------------

FLIT = 64


def _expected_output(in_port, pos, dst, host=False):
    """Reference XY route (independent of the RTL): output port, or None if dropped."""
    r, c = pos
    dr, dc = (0, 0) if host else dst
    out = ("e" if dc > c else "w" if dc < c else "s" if dr > r else "n" if dr < r
           else "w" if host else "l")
    return out if out in ALLOWED_TURNS[in_port] else None


@pytest.mark.parametrize("in_port", PORTS)
def test_router_xy_routes_every_destination(in_port):
    pos = (1, 1)
    dsts = [((r, c), False) for r in range(3) for c in range(3)] + [((0, 0), True)]
    dut = Router(FLIT)
    rng = random.Random(1)
    packets = []
    for dst, host in dsts:
        h = Header(Kind.VEC, dst_row=dst[0], dst_col=dst[1], dst_host=host, length=2)
        packets.append(Packet(h, (rng.getrandbits(32), rng.getrandbits(32))))
    got = {p: [] for p in PORTS}
    total = sum(_expected_output(in_port, pos, d, h) is not None for d, h in dsts)

    async def source(ctx):
        ctx.set(dut.row, pos[0])
        ctx.set(dut.col, pos[1])
        beats = [b for p in packets for b in p.flits(FLIT)]
        await drive_beats(ctx, getattr(dut, f"{in_port}_in"), beats)

    def done():
        return sum(sum(last for _, _, last in v) for v in got.values()) == total

    sinks = [sink_bench(getattr(dut, f"{p}_out"), got[p], done=done, limit=400) for p in PORTS]
    run(dut, source, *sinks)
    expect = defaultdict(list)
    for pkt, (dst, host) in zip(packets, dsts, strict=True):
        out = _expected_output(in_port, pos, dst, host)
        if out is not None:
            expect[out].append(pkt)
    for p in PORTS:
        assert split_packets(got[p], FLIT) == expect[p], f"output {p}"


def test_router_head_latency_is_hop_cycles_and_body_streams():
    """Head flit: accepted in cycle t, offered on the output in cycle t + HOP_CYCLES;
    body flits then pass one per cycle (sink always ready)."""
    mesh = MeshConfig.uniform(3, 3, TileConfig(vlen=128, dmem_kib=16, imem_kib=1, wmem_kib=0),
                              flit_bits=FLIT)
    assert Router.HOP_CYCLES == mesh.hop_cycles
    dut = Router(FLIT)
    pkt = random_packet(random.Random(2), (1, 2), max_words=10)
    beats = pkt.flits(FLIT)
    sent, got = [], []

    async def source(ctx):
        ctx.set(dut.row, 1)
        ctx.set(dut.col, 1)
        await ctx.tick()
        await drive_beats(ctx, dut.l_in, beats, log=sent)

    async def sink(ctx):
        await collect_beats(ctx, dut.e_out, got, done=lambda: len(got) == len(beats), limit=100)

    run(dut, source, sink)
    sent = [s + 1 for s in sent]             # the source started one cycle late
    out_cycles = [c for c, _, _ in got]
    assert out_cycles[0] - sent[0] == mesh.hop_cycles
    assert out_cycles == list(range(out_cycles[0], out_cycles[0] + len(beats)))
    assert [(d, last) for _, d, last in got] == beats


def test_router_wormhole_backpressure_all_inputs():
    """Five inputs send multi-flit packets at once under random idle and backpressure:
    every output sees whole packets (never interleaved) in per-input order."""
    rng = random.Random(3)
    pos = (1, 1)
    dut = Router(FLIT)
    dests = [(r, c) for r in range(3) for c in range(3)]
    plan = {}
    for p in PORTS:
        pk = []
        while len(pk) < 8:
            d = rng.choice(dests)
            if _expected_output(p, pos, d) is not None:
                pk.append(random_packet(rng, d, src=(PORTS.index(p), 0)))
        plan[p] = pk
    got = {p: [] for p in PORTS}
    total = sum(len(v) for v in plan.values())

    def done():
        return sum(sum(last for _, _, last in v) for v in got.values()) == total

    def source(p):
        async def bench(ctx):
            ctx.set(dut.row, pos[0])
            ctx.set(dut.col, pos[1])
            beats = [b for pkt in plan[p] for b in pkt.flits(FLIT)]
            await drive_beats(ctx, getattr(dut, f"{p}_in"), beats, rng=random.Random(p), idle=0.3)
        return bench

    def sink(p):
        return sink_bench(getattr(dut, f"{p}_out"), got[p], done=done,
                          rng=random.Random(p + "s"), stall=0.4, limit=3000)

    run(dut, *[source(p) for p in PORTS], *[sink(p) for p in PORTS])
    assert done(), "traffic did not drain"
    for o in PORTS:
        arrived = split_packets(got[o], FLIT)
        for p in PORTS:
            mine = [pkt for pkt in arrived if pkt.header.src_row == PORTS.index(p)]
            assert mine == [pkt for pkt in plan[p] if _expected_output(p, pos, (
                pkt.header.dst_row, pkt.header.dst_col)) == o]


def test_router_drops_malformed_route_and_keeps_going():
    """A head flit asking for a turn XY never takes (north input -> east) is discarded
    with its body; the next packet on that input is delivered."""
    dut = Router(FLIT)
    rng = random.Random(4)
    bad = random_packet(rng, (2, 2))         # from the north input at (1, 1): east is illegal
    good = random_packet(rng, (2, 1))        # straight south
    got = {p: [] for p in PORTS}

    async def source(ctx):
        ctx.set(dut.row, 1)
        ctx.set(dut.col, 1)
        await drive_beats(ctx, dut.n_in, bad.flits(FLIT) + good.flits(FLIT))

    def done():
        return any(last for _, _, last in got["s"])

    sinks = [sink_bench(getattr(dut, f"{p}_out"), got[p], done=done, limit=200) for p in PORTS]
    run(dut, source, *sinks)
    assert split_packets(got["s"], FLIT) == [good]
    assert all(not got[p] for p in PORTS if p != "s")


# --- a 3 x 3 mesh of routers ---------------------------------------------------------------


class RouterMesh(wiring.Component):
    """Test fixture: routers only, wired by the product's :func:`connect_grid`."""

    def __init__(self, rows, cols, flit_bits):
        self.rows, self.cols, self.flit_bits = rows, cols, flit_bits
        link = link_signature(flit_bits)
        members = {"host_in": In(link), "host_out": Out(link)}
        for r in range(rows):
            for c in range(cols):
                members[f"l_in_{r}_{c}"] = In(link)
                members[f"l_out_{r}_{c}"] = Out(link)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        nodes = {}
        for r in range(self.rows):
            for c in range(self.cols):
                router = m.submodules[f"r{r}{c}"] = Router(self.flit_bits)
                m.d.comb += [router.row.eq(r), router.col.eq(c)]
                wiring.connect(m, wiring.flipped(getattr(self, f"l_in_{r}_{c}")), router.l_in)
                wiring.connect(m, router.l_out, wiring.flipped(getattr(self, f"l_out_{r}_{c}")))
                nodes[r, c] = router
        connect_grid(m, nodes, self.rows, self.cols)
        wiring.connect(m, wiring.flipped(self.host_in), nodes[0, 0].w_in)
        wiring.connect(m, nodes[0, 0].w_out, wiring.flipped(self.host_out))
        return m


def test_mesh_of_routers_latency_per_hop():
    """Head latency from a local input to a local output = hop_cycles x routers passed."""
    dut = RouterMesh(3, 3, FLIT)
    mesh = MeshConfig.uniform(3, 3, TileConfig(vlen=128, dmem_kib=16, imem_kib=1, wmem_kib=0),
                              flit_bits=FLIT)
    cases = [((0, 0), (2, 2)), ((2, 0), (0, 2)), ((1, 1), (1, 1)), ((2, 2), (0, 0))]
    for src, dst in cases:
        pkt = Packet(Header(Kind.START, dst_row=dst[0], dst_col=dst[1]))
        sent, got = [], []

        async def source(ctx, src=src, pkt=pkt, sent=sent):
            await drive_beats(ctx, getattr(dut, f"l_in_{src[0]}_{src[1]}"), pkt.flits(FLIT),
                              log=sent)

        async def sink(ctx, dst=dst, got=got):
            await collect_beats(ctx, getattr(dut, f"l_out_{dst[0]}_{dst[1]}"), got,
                                done=lambda: bool(got), limit=100)

        run(dut, source, sink)
        routers = abs(src[0] - dst[0]) + abs(src[1] - dst[1]) + 1
        assert got[0][0] - sent[0] == mesh.hop_cycles * routers, (src, dst)


def test_mesh_of_routers_random_all_to_all_no_deadlock():
    """Every tile and the host send multi-flit packets to random destinations (tiles and
    host) at once, under random idle and backpressure; all arrive intact, in order per
    (source, destination) pair, well within the cycle budget (no deadlock or livelock)."""
    rows = cols = 3
    dut = RouterMesh(rows, cols, FLIT)
    rng = random.Random(5)
    tiles = [(r, c) for r in range(rows) for c in range(cols)]
    endpoints = tiles + ["host"]
    plan = {}
    for src in endpoints:
        pkts = []
        for _ in range(6):
            dst = rng.choice(endpoints)
            n = rng.randint(1, 9)
            h = Header(Kind.VEC, dst_row=0 if dst == "host" else dst[0],
                       dst_col=0 if dst == "host" else dst[1], dst_host=dst == "host",
                       src_row=0 if src == "host" else src[0],
                       src_col=0 if src == "host" else src[1], src_host=src == "host",
                       length=n)
            pkts.append(Packet(h, tuple(rng.getrandbits(32) for _ in range(n))))
        plan[src] = pkts

    def port(ep, direction):
        return getattr(dut, f"host_{direction}" if ep == "host" else
                       f"l_{direction}_{ep[0]}_{ep[1]}")

    got = {ep: [] for ep in endpoints}
    total = sum(len(v) for v in plan.values())

    def done():
        return sum(sum(last for _, _, last in v) for v in got.values()) == total

    def source(ep):
        async def bench(ctx):
            beats = [b for p in plan[ep] for b in p.flits(FLIT)]
            await drive_beats(ctx, port(ep, "in"), beats, rng=random.Random(str(ep)), idle=0.2)
        return bench

    def sink(ep):
        return sink_bench(port(ep, "out"), got[ep], done=done,
                          rng=random.Random(str(ep) + "s"), stall=0.3, limit=4000)

    run(dut, *[source(e) for e in endpoints], *[sink(e) for e in endpoints])
    assert done(), "traffic did not drain within 4000 cycles"
    for dst in endpoints:
        arrived = split_packets(got[dst], FLIT)
        for src in endpoints:
            def is_from(p, src=src):
                h = p.header
                return h.src_host if src == "host" else (
                    not h.src_host and (h.src_row, h.src_col) == src)

            def is_to(p, dst=dst):
                h = p.header
                return h.dst_host if dst == "host" else (
                    not h.dst_host and (h.dst_row, h.dst_col) == dst)
            assert [p for p in arrived if is_from(p)] == [p for p in plan[src] if is_to(p)]


# --- packet helpers ------------------------------------------------------------------------


def test_header_round_trip_and_layout():
    h = Header(Kind.READ_REPLY, dst_row=63, dst_col=1, dst_host=True, src_row=2, src_col=62,
               src_host=False, sel=MemSel.WMEM, length=127, addr=(1 << 26) - 1)
    bits = h.encode()
    assert bits < 1 << 64
    assert Header.decode(bits) == h
    # Field positions by hand: dst_col at 0, dst_host at bit 12, kind at 26, addr at 38.
    assert bits & 0x3F == 1 and (bits >> 12) & 1 == 1
    assert (bits >> 26) & 7 == Kind.READ_REPLY.value and bits >> 38 == (1 << 26) - 1


def test_packet_flits_pack_words_little_endian():
    p = mem_write((1, 2), MemSel.DMEM, 7, [0x11111111, 0x22222222, 0x33333333])
    beats = p.flits(64)
    assert beats[1:] == [(0x22222222_11111111, False), (0x33333333, True)]
    assert Packet.from_flits(beats, 64) == p
    assert len(p.flits(128)) == 2 and len(mem_read((0, 0), MemSel.DMEM, 0, 5).flits(64)) == 1
    v = vec((0, 1), (2, 3), (1 << 127) | 5, 128)
    assert Packet.from_flits(v.flits(64), 64).words == (5, 0, 0, 1 << 31)
    assert start((3, 4)).flits(512) == [(Header(Kind.START, dst_row=3, dst_col=4,
                                                src_host=True).encode(), True)]


@pytest.mark.parametrize("bad, msg", [
    (dict(length=128), r"^Header\.length must be between 0 and 127, not 128$"),
    (dict(dst_row=64), r"^Header\.dst_row must be between 0 and 63, not 64$"),
    (dict(addr=-1), r"^Header\.addr must be between 0 and 67108863, not -1$"),
])
def test_header_validation(bad, msg):
    with pytest.raises(ValueError, match=msg):
        Header(Kind.MEM_WRITE, **bad)


def test_packet_length_mismatch_rejected():
    with pytest.raises(ValueError, match=r"^Packet of kind MEM_WRITE with length 2 needs 2 "
                                         r"payload words, not 1$"):
        Packet(Header(Kind.MEM_WRITE, length=2), (1,))


# --- the network interface, with a behavioural core written here --------------------------

NI_TILE = TileConfig(vlen=128, dmem_kib=16, imem_kib=1, wmem_kib=0)


def _ni(cols=3, rows=2, flit_bits=FLIT, tile=NI_TILE):
    from hwgen.noc.ni import NetworkInterface
    mesh = MeshConfig.uniform(rows, cols, tile, flit_bits=flit_bits)
    return NetworkInterface(tile, mesh), mesh


async def fake_memory(ctx, ni, memory, log, *, rng, stall, stop):
    """The core's ``mem`` port as the contract describes it: writes are absorbed, each
    read answers one beat later, in order; random stalls on both request and response."""
    pending = []
    while not stop():
        req_ready = rng.random() >= stall and len(pending) < 2
        ctx.set(ni.mem.req.ready, int(req_ready))
        ctx.set(ni.mem.resp.valid, int(bool(pending)))
        ctx.set(ni.mem.resp.payload, pending[0] if pending else 0)
        _, _, rv, rp, sv, sr = await ctx.tick().sample(ni.mem.req.valid, ni.mem.req.payload,
                                                       ni.mem.resp.valid, ni.mem.resp.ready)
        if sv and sr:
            pending.pop(0)
        if rv and req_ready:
            key = (int(rp.sel), int(rp.addr))
            log.append((key[0], key[1], int(rp.we), int(rp.wdata)))
            if rp.we:
                memory[key] = int(rp.wdata)
            else:
                pending.append(memory.get(key, 0))


def test_ni_mem_write_then_read_back_under_stalls():
    """MEM_WRITE of 11 words (partial last flit) becomes 11 word writes at consecutive
    byte addresses; MEM_READ of 9 of them returns a READ_REPLY to the host with exactly
    those words, under random stalls on every interface."""
    ni, mesh = _ni()
    rng = random.Random(6)
    words = [rng.getrandbits(32) for _ in range(11)]
    wr = mem_write((1, 2), MemSel.DMEM, 100, words)
    rd = mem_read((1, 2), MemSel.DMEM, 101, 9)
    memory, log, out = {}, [], []

    def done():
        return any(last for _, _, last in out)

    async def host(ctx):
        ctx.set(ni.row, 1)
        ctx.set(ni.col, 2)
        await drive_beats(ctx, ni.net_in, wr.flits(FLIT) + rd.flits(FLIT), rng=rng, idle=0.3)

    async def mem(ctx):
        await fake_memory(ctx, ni, memory, log, rng=random.Random(7), stall=0.3, stop=done)

    run(ni, host, mem, sink_bench(ni.net_out, out, done=done, rng=random.Random(8), stall=0.3,
                                  limit=2000))
    writes = [(s, a, d) for s, a, we, d in log if we]
    assert writes == [(MemSel.DMEM.value, 4 * (100 + i), w) for i, w in enumerate(words)]
    reads = [a for s, a, we, _ in log if not we]
    assert reads == [4 * (101 + i) for i in range(9)]
    (reply,) = split_packets(out, FLIT)
    assert reply.header == Header(Kind.READ_REPLY, dst_host=True, src_row=1, src_col=2,
                                  sel=MemSel.DMEM, length=9, addr=101)
    assert reply.words == tuple(words[1:10])


def test_ni_start_done_and_vsend():
    """START pulses ctrl.start once; a done pulse sends DONE(cycles) to the host; a tx
    beat becomes a VEC packet to (id // cols, id % cols); an id outside the mesh is
    consumed and dropped."""
    ni, mesh = _ni(cols=3, rows=2)
    vector = random.Random(9).getrandbits(128)
    out, starts = [], []

    def done():
        return sum(last for _, _, last in out) == 2

    async def core(ctx):
        ctx.set(ni.row, 1)
        ctx.set(ni.col, 0)
        ctx.set(ni.ctrl.cycles, 0x1234_5678)
        await drive_beats(ctx, ni.net_in, start((1, 0)).flits(FLIT))
        for _ in range(3):
            _, _, s = await ctx.tick().sample(ni.ctrl.start)
            starts.append(s)
        ctx.set(ni.ctrl.done, 1)
        await ctx.tick()
        ctx.set(ni.ctrl.done, 0)
        for dest in (6, 5):                        # 6 = no such tile in 2 x 3; 5 = (1, 2)
            ctx.set(ni.tx.valid, 1)
            ctx.set(ni.tx.payload, {"dest": dest, "data": vector})
            await ctx.tick().until(ni.tx.ready)
        ctx.set(ni.tx.valid, 0)

    async def start_probe(ctx):
        # ctrl.start must be high in the handshake cycle of the START header only
        for _ in range(10):
            _, _, s, v, r = await ctx.tick().sample(ni.ctrl.start, ni.net_in.valid,
                                                    ni.net_in.ready)
            starts.append((s, v and r))

    run(ni, core, start_probe, sink_bench(ni.net_out, out, done=done, limit=200))
    pulses = [x for x in starts if isinstance(x, tuple)]
    assert sum(s for s, _ in pulses) == 1 and all(s == hs for s, hs in pulses)
    done_pkt, vec_pkt = split_packets(out, FLIT)
    assert done_pkt == Packet(Header(Kind.DONE, dst_host=True, src_row=1, src_col=0, length=1),
                              (0x1234_5678,))
    assert vec_pkt == vec((1, 0), (1, 2), vector, 128)


def test_ni_receive_fifo_backpressure_and_order():
    """Three VEC packets while the core does not pop: two fill the receive FIFO, the third
    waits in the network; popping then yields all three in order."""
    from hwgen.noc.ni import RX_FIFO_DEPTH
    ni, mesh = _ni()
    rng = random.Random(10)
    vectors = [rng.getrandbits(128) for _ in range(RX_FIFO_DEPTH + 1)]
    pkts = [vec((0, 0), (1, 1), v, 128) for v in vectors]
    sent, popped = [], []

    async def net(ctx):
        ctx.set(ni.row, 1)
        ctx.set(ni.col, 1)
        await drive_beats(ctx, ni.net_in, [b for p in pkts for b in p.flits(FLIT)], log=sent)

    async def core(ctx):
        for _ in range(40):
            await ctx.tick()
        blocked = len(sent)
        assert blocked < sum(len(p.flits(FLIT)) for p in pkts), "the third vector got in"
        assert ctx.get(ni.rx.valid)
        ctx.set(ni.rx.ready, 1)
        for _ in range(60):
            _, _, v, d = await ctx.tick().sample(ni.rx.valid, ni.rx.payload)
            if v:
                popped.append(d)
            if len(popped) == len(vectors):
                break
        ctx.set(ni.rx.ready, 0)

    run(ni, net, core)
    assert popped == vectors


@pytest.mark.parametrize("flit_bits, vlen", [(64, 256), (256, 128), (512, 512)])
def test_ni_vector_round_trip_any_flit_width(flit_bits, vlen):
    """vsend at one NI -> its VEC flits -> another NI's rx: the vector survives for flits
    narrower than, equal to and wider than vlen."""
    tile = TileConfig(vlen=vlen, dmem_kib=16, imem_kib=1, wmem_kib=0)
    ni, mesh = _ni(cols=4, rows=4, flit_bits=flit_bits, tile=tile)
    value = random.Random(flit_bits).getrandbits(vlen)
    out = []

    async def core(ctx):
        ctx.set(ni.tx.valid, 1)
        ctx.set(ni.tx.payload, {"dest": 13, "data": value})
        await ctx.tick().until(ni.tx.ready)
        ctx.set(ni.tx.valid, 0)

    run(ni, core, sink_bench(ni.net_out, out, done=lambda: any(x[2] for x in out), limit=100))
    (pkt,) = split_packets(out, flit_bits)
    assert pkt == vec((0, 0), (3, 1), value, vlen)
    assert len(out) == mesh.packet_flits(vlen)
    got = []
    ni2, _ = _ni(cols=4, rows=4, flit_bits=flit_bits, tile=tile)

    async def feed(ctx):
        await drive_beats(ctx, ni2.net_in, pkt.flits(flit_bits))

    async def pop(ctx):
        ctx.set(ni2.rx.ready, 1)
        (d,) = await ctx.tick().sample(ni2.rx.payload).until(ni2.rx.valid)
        got.append(d)

    run(ni2, feed, pop)
    assert got == [value]


def test_divider_constants_exact_for_every_mesh_width():
    from hwgen.noc.ni import divider_constants
    for cols in range(1, 65):
        n = 64 * cols
        mult, shift = divider_constants(cols, n)
        assert all((d * mult) >> shift == d // cols for d in range(n))
