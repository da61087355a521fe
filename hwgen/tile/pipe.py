"""Pipeline helpers shared by the unit pipelines: delay lines that pad to a latency."""

from __future__ import annotations

from amaranth.hdl import Array, Const, Signal, Value

__all__ = ["delay", "pad_cycles", "pick"]


def delay(m, value, cycles: int, name: str, *, clear=None):
    """``value`` delayed by ``cycles`` clock edges (registers in ``m.d.sync``).

    With ``clear`` (a 1-bit value) the registers load 0 while it is high, which drops
    in-flight valid bits on START.
    """
    value = Value.cast(value)
    for i in range(cycles):
        reg = Signal(value.shape(), name=f"{name}_d{i}")
        m.d.sync += reg.eq(value if clear is None else value & ~clear.replicate(len(value)))
        value = reg
    return value


def pad_cycles(unit: str, latency_attr: str, latency: int, natural: int) -> int:
    """Delay to add to a pipeline whose result is naturally written ``natural`` cycles
    after issue so that it is written at ``latency - 1`` (readable at ``latency``).

    Raises ValueError when the contract's latency is shorter than the structure allows.
    """
    pad = latency - 1 - natural
    if pad < 0:
        raise ValueError(f"{unit}: TileConfig.{latency_attr} = {latency} is below this "
                         f"pipeline's minimum of {natural + 1} cycles")
    return pad


def pick(values, index):
    """``values[index]`` as a mux; the table is padded with zeros to a power of two so
    the generated case statement is complete (out-of-range indices read 0)."""
    values = list(values)
    index = Value.cast(index)
    size = 1 << len(index)
    if len(values) > size:
        raise ValueError(f"pick: {len(values)} values but a {len(index)}-bit index")
    width = max(len(Value.cast(v)) for v in values)
    return Array(values + [Const(0, width)] * (size - len(values)))[index]
