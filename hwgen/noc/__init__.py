"""The network-on-chip: packet format, 5-port XY router and the tile's network interface."""

from .packet import Header, Kind, MemSel, Packet, link_signature

__all__ = ["Header", "Kind", "MemSel", "Packet", "link_signature"]
