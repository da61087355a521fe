"""The Core's port signature (agreed with the network interface; /work/core_ni_interface.md).

* ``mem``: host access to IMEM/DMEM/WMEM while the core is not running: ``mem.req``
  (``sel`` 0 IMEM / 1 DMEM / 2 WMEM, byte ``addr`` aligned to 4, ``we``, ``wdata``) and
  ``mem.resp`` (one 32-bit beat per read, in order; writes answer nothing; writes to a
  ROM WMEM are ignored).
* ``ctrl``: ``start`` (pulse: pc <- 0, queue/scoreboard cleared, cycle counter <- 0, run),
  ``running``, ``done`` (one-cycle pulse when ``ecall`` retires), ``cycles`` (START to
  DONE, held after DONE).
* ``tx``: one beat per ``vsend`` (``dest`` tile id, ``data`` the vector).
* ``rx``: received vectors; ``vrecv`` pops one beat.
* ``tile_id``: this tile's id (``csrr mhartid``).
"""

from __future__ import annotations

from amaranth.hdl import unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MemSel", "MEM_REQ_LAYOUT", "MemPortSignature", "CtrlSignature", "tx_layout",
           "core_signature"]


class MemSel:
    """Values of ``mem.req.sel``."""
    IMEM = 0
    DMEM = 1
    WMEM = 2


MEM_REQ_LAYOUT = data.StructLayout({"sel": 2, "addr": 32, "we": 1, "wdata": 32})


class MemPortSignature(wiring.Signature):
    """Request/response memory port, driven by the network interface."""

    def __init__(self):
        super().__init__({"req": In(stream.Signature(MEM_REQ_LAYOUT)),
                          "resp": Out(stream.Signature(unsigned(32)))})


class CtrlSignature(wiring.Signature):
    """Start/done handshake with the network interface."""

    def __init__(self):
        super().__init__({"start": In(1), "running": Out(1), "done": Out(1),
                          "cycles": Out(32)})


def tx_layout(vlen: int) -> data.StructLayout:
    """Payload of one ``vsend`` beat: destination tile id and the vector."""
    return data.StructLayout({"dest": 16, "data": vlen})


def core_signature(vlen: int) -> dict[str, wiring.Member]:
    """Members of :class:`hwgen.tile.core.Core` for vector length ``vlen``."""
    return {"mem": Out(MemPortSignature()), "ctrl": Out(CtrlSignature()),
            "tx": Out(stream.Signature(tx_layout(vlen))),
            "rx": In(stream.Signature(unsigned(vlen))),
            "tile_id": In(16)}
