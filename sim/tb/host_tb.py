"""cocotb test: drive a job of host packets into the mesh's host port and record the replies.

The job (JSON file named by ``L2S_TB_JOB``, written by :mod:`sim.rtl`) is a list of
stages; each stage sends its flits on ``host_in`` (one beat per cycle when the mesh is
ready) and then waits until ``expect`` more packets have arrived on ``host_out``, which
is always ready and recorded from reset on. The result (JSON file ``L2S_TB_OUT``) lists
every received packet (flits as hex, cycle of its header beat), the cycle in which each
sent beat was accepted, the cycles simulated and the wall time of the run. Idle waits
are edge triggered (``host_out__valid`` rising), so long kernels run without Python work
per cycle.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, Event, First, ReadOnly, RisingEdge, Timer

__all__ = ["run_job"]

PERIOD_NS = 10


def _cycle() -> int:
    return int(cocotb.utils.get_sim_time("ns")) // PERIOD_NS


async def _collect(dut, packets: list, state: dict) -> None:
    """Record every host_out beat (ready is held high) as packets of (cycle, flits)."""
    flit_bits = state["flit_bits"]
    mask = (1 << flit_bits) - 1
    current: list[str] = []
    start = 0
    while True:
        await ReadOnly()
        if not dut.host_out__valid.value:
            await RisingEdge(dut.host_out__valid)
            await ReadOnly()
        beat = int(dut.host_out__payload.value)
        if not current:
            start = _cycle()
        current.append(format(beat & mask, "x"))
        if beat >> flit_bits & 1:
            packets.append({"cycle": start, "flits": current})
            current = []
            state["event"].set()
        await RisingEdge(dut.clk)


async def _send(dut, flits: list, flit_bits: int) -> list[int]:
    """Drive (data, last) beats on host_in; return the cycle each was accepted in."""
    accepted = []
    await RisingEdge(dut.clk)      # a writable phase (a wait may have ended in ReadOnly)
    for data, last in flits:
        dut.host_in__payload.value = int(data, 16) | (int(last) << flit_bits)
        dut.host_in__valid.value = 1
        while True:
            await ReadOnly()
            ready = bool(dut.host_in__ready.value)
            await RisingEdge(dut.clk)
            if ready:
                accepted.append(_cycle())
                break
    dut.host_in__valid.value = 0
    return accepted


@cocotb.test()
async def run_job(dut):
    """Run the job file's stages; write the result file."""
    with open(os.environ["L2S_TB_JOB"]) as f:
        job = json.load(f)
    flit_bits = job["flit_bits"]
    max_wait = job.get("max_cycles", 10_000_000)
    cocotb.start_soon(Clock(dut.clk, PERIOD_NS, unit="ns").start())
    dut.rst.value = 1
    dut.host_in__valid.value = 0
    dut.host_in__payload.value = 0
    dut.host_out__ready.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    t0, c0 = time.perf_counter(), _cycle()
    packets: list = []
    state = {"flit_bits": flit_bits, "event": Event()}
    cocotb.start_soon(_collect(dut, packets, state))
    stages: list = []
    try:
        await _stages(dut, job, packets, state, stages, max_wait)
    finally:
        result = {"packets": packets, "stages": stages, "cycles": _cycle() - c0,
                  "seconds": time.perf_counter() - t0}
        with open(os.environ["L2S_TB_OUT"], "w") as f:
            json.dump(result, f)


async def _stages(dut, job, packets, state, stages, max_wait) -> None:
    flit_bits = job["flit_bits"]
    for stage in job["stages"]:
        s0 = time.perf_counter()
        want = len(packets) + stage.get("expect", 0)    # replies may come during the send
        accepted = await _send(dut, stage["flits"], flit_bits)
        deadline = _cycle() + max_wait
        while len(packets) < want:
            state["event"].clear()
            await First(state["event"].wait(),
                        Timer(max(1, deadline - _cycle()) * PERIOD_NS, "ns"))
            if _cycle() >= deadline and len(packets) < want:
                raise TimeoutError(f"stage {stage.get('name')}: {len(packets)} of {want} packets "
                                   f"after {max_wait} cycles")
        stages.append({"name": stage.get("name"), "accepted": accepted, "end_cycle": _cycle(),
                       "seconds": time.perf_counter() - s0})
