"""ROM contents for the ``l2s_rom_*`` wrappers: ``$readmemh`` files, stand-in or from weights.

A ROM bank reads the file its tile parameter ``WMEM_INIT_BANK<b>`` names (paths relative
to the folder ``generate`` writes, where the README runs the tools). Without weights every
bank of a shape reads one **stand-in** file of deterministic pseudo-random rows (seeded by
the shape): not the model, but contents no synthesis tool can constant-fold, as it would
an all-zero ROM (reads of a constant array become constants and the array disappears).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np

__all__ = ["INIT_DIR", "standin_path", "standin_hex", "rows_hex", "weight_banks", "load_weights"]

#: Folder (below the generated folder) of the ROM init files.
INIT_DIR = "rom_init"


def standin_path(rom_module: str) -> str:
    """Init file of every bank of ``rom_module`` when no weights are given."""
    return f"{INIT_DIR}/{rom_module}.hex"


def rows_hex(rows: np.ndarray, width: int) -> str:
    """``$readmemh`` text of ``rows`` (uint8 array [n_rows, width / 8], byte 0 = bits 7:0):
    one row per line, ``width / 4`` hex digits, most significant first."""
    if rows.ndim != 2 or rows.shape[1] * 8 != width:
        raise ValueError(f"rows must be [n, {width // 8}] bytes, not {list(rows.shape)}")
    text = rows[:, ::-1].tobytes().hex()
    digits = width // 4
    return "".join(text[i:i + digits] + "\n" for i in range(0, len(text), digits))


def standin_hex(rom_module: str, rows: int, width: int) -> str:
    """The stand-in contents of ``rom_module`` (``rows`` x ``width`` bits)."""
    seed = int.from_bytes(hashlib.sha256(rom_module.encode()).digest()[:8], "little")
    data = np.random.default_rng(seed).integers(0, 256, size=(rows, width // 8), dtype=np.uint8)
    return rows_hex(data, width)


def _as_bytes(name: str, array: np.ndarray) -> np.ndarray:
    """Weights of op ``name`` as little-endian bytes: floating point as FP16 (numpy's
    round to nearest even), int8 as is; anything else is refused."""
    if array.dtype.kind == "f":
        return np.ascontiguousarray(array, dtype="<f2").reshape(-1).view(np.uint8)
    if array.dtype == np.int8:
        return np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    raise ValueError(f"weights {name!r} must be floating point (stored as FP16) or int8, "
                     f"not {array.dtype}")


def weight_banks(design, weights: Mapping[str, np.ndarray]
                 ) -> tuple[dict[tuple[int, int], dict[str, str]], dict[str, str]]:
    """Lay ``weights`` (op name -> array, in order) out in the tiles' ROM WMEM.

    Each op goes to its placement group (``design.placement.op_group``; without a
    placement the whole mesh, row-major, is one group) and is split evenly over the
    group's tiles like the op's work: tile ``k`` of ``n`` gets bytes ``[k*s, (k+1)*s)`` of
    the flattened array, ``s = ceil(size / n)``; each tile appends its share after the
    previous ops' (WMEM byte address = offset, rows of ``vlen`` bits little-endian). Returns
    per tile ``{WMEM_INIT_BANK<b>: file}`` for the banks holding data (others read nothing)
    and the files' text by path.
    """
    from explorer.contract import SRAM_BANK_ROWS
    from explorer.errors import InputError

    mesh = design.mesh
    if design.placement is not None:
        groups = [g.tiles for g in design.placement.groups]
        op_group = design.placement.op_group
    else:
        groups = [tuple((r, c) for r in range(mesh.rows) for c in range(mesh.cols))]
        op_group = {}
    chunks: dict[tuple[int, int], list[np.ndarray]] = {}
    for name, array in weights.items():
        if design.placement is not None and name not in op_group:
            raise InputError(f"weights {name!r}: no such op in the design's placement")
        data = _as_bytes(name, np.asarray(array))
        tiles = groups[op_group.get(name, 0)]
        share = -(-data.size // len(tiles))
        for k, rc in enumerate(tiles):
            chunks.setdefault(rc, []).append(data[k * share:(k + 1) * share])
    params: dict[tuple[int, int], dict[str, str]] = {}
    files: dict[str, str] = {}
    for (r, c), parts in sorted(chunks.items()):
        tile = mesh.tile_at(r, c)
        data = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        if tile.wmem_kind != "rom" or not tile.wmem_rows:
            raise InputError(f"weights for tile ({r}, {c}), whose WMEM is not a ROM "
                             f"({tile.wmem_kib} KiB {tile.wmem_kind})")
        row_bytes = tile.wmem_port_bits // 8
        if data.size > tile.wmem_rows * row_bytes:
            raise InputError(f"weights for tile ({r}, {c}) need {data.size:,} bytes, its WMEM "
                             f"holds {tile.wmem_rows * row_bytes:,}")
        n_rows = -(-data.size // row_bytes)
        rows = np.zeros((n_rows, row_bytes), np.uint8)
        rows.reshape(-1)[:data.size] = data
        bank_rows = min(SRAM_BANK_ROWS, 1 << max(0, (tile.wmem_rows - 1).bit_length()))
        for b in range(-(-n_rows // bank_rows)):
            depth = min(bank_rows, tile.wmem_rows - b * bank_rows)
            bank = np.zeros((depth, row_bytes), np.uint8)
            part = rows[b * bank_rows:(b + 1) * bank_rows]
            bank[:len(part)] = part
            path = f"{INIT_DIR}/tile_r{r}_c{c}_bank{b}.hex"
            files[path] = rows_hex(bank, tile.wmem_port_bits)
            params.setdefault((r, c), {})[f"WMEM_INIT_BANK{b}"] = path
    return params, files


def load_weights(path) -> dict[str, np.ndarray]:
    """Arrays of a ``.npz`` file by name, in file order (no pickles)."""
    from explorer.errors import InputError

    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read weights file {path}: {e}") from None
