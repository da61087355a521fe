"""Design schema: validation messages, JSON round trip, malformed files at the CLI."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer.cli import main
from explorer.design import Design, MemoryConfig, MeshConfig, Placement, TileConfig, TileGroup
from explorer.errors import InputError
from explorer.ppa.sample import random_design

EXAMPLE = "examples/llama3.1-8b_3nm_hp.json"


@pytest.mark.parametrize("kwargs, message", [
    (dict(vlen=384), r"^TileConfig\.vlen must be a power of two, not 384$"),
    (dict(vlen=4096), r"^TileConfig\.vlen must be between 128 and 2048, not 4096$"),
    (dict(fetch=0), r"^TileConfig\.fetch must be between 1 and 16, not 0$"),
    (dict(stations=33), r"^TileConfig\.stations must be between 1 and 32, not 33$"),
    (dict(dmem_kib=48), r"^TileConfig\.dmem_kib must be a power of two, not 48$"),
    (dict(wmem_kib=20), r"^TileConfig\.wmem_kib must be a multiple of 16, not 20$"),
    (dict(wmem_kind="flash"), r"^TileConfig\.wmem_kind must be 'rom' or 'sram', not 'flash'$"),
])
def test_tile_config_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TileConfig(**kwargs)


def test_tile_config_types():
    with pytest.raises(TypeError, match=r"^TileConfig\.fetch must be an integer, not 2\.0$"):
        TileConfig(fetch=2.0)
    with pytest.raises(TypeError, match=r"^TileConfig\.vlen must be an integer, not True$"):
        TileConfig(vlen=True)


def test_mesh_and_memory_messages():
    t = TileConfig()
    with pytest.raises(ValueError, match=r"^MeshConfig\.class_grid must be 2 rows of 2 class indices$"):
        MeshConfig(2, 2, (t,), ((0, 0),))
    with pytest.raises(ValueError, match=r"^MeshConfig\.tile_classes has a class no tile uses$"):
        MeshConfig(1, 1, (t, t), ((0,),))
    with pytest.raises(ValueError, match=r"^MemoryConfig\.weights is 'off_chip' but no off-chip memory is configured$"):
        MemoryConfig("off_chip")
    with pytest.raises(ValueError, match=r"^MemoryConfig\.channels must be 0 exactly when offchip is null$"):
        MemoryConfig("on_die", "hbm3", 0)


def test_placement_checks_tiles_and_classes():
    a, b = TileConfig(vlen=128), TileConfig(vlen=256)
    mesh = MeshConfig(1, 2, (a, b), ((0, 1),))
    mixed = Placement("w", (TileGroup(((0, 0), (0, 1))),), {"op": 0})
    with pytest.raises(ValueError, match=r"^Placement group 0 mixes tile classes \[0, 1\]$"):
        Design("d", "3nm", mesh, placement=mixed)
    outside = Placement("w", (TileGroup(((0, 0), (1, 0))),), {"op": 0})
    with pytest.raises(ValueError, match=r"outside the 1x2 mesh$"):
        Design("d", "3nm", mesh, placement=outside)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_json_round_trip(seed):
    rng = np.random.default_rng(seed)
    d = random_design(rng, "7nm", 570.0, max_side=6)
    again = Design.from_dict(json.loads(d.to_json()))
    assert again == d
    assert again.to_json() == d.to_json()
    for t in d.mesh.tile_classes:                               # contract properties survive
        t2 = again.mesh.tile_classes[d.mesh.tile_classes.index(t)]
        assert (t2.issue_width, t2.lanes_fp16, t2.dmem_banks) == (t.issue_width, t.lanes_fp16, t.dmem_banks)


def _mutations(data: dict) -> st.SearchStrategy:
    paths = [("schema_version",), ("name",), ("clock_mhz",), ("mesh", "rows"), ("mesh", "flit_bits"),
             ("mesh", "class_grid"), ("mesh", "tile_classes"), ("memory", "weights"),
             ("memory", "channels"), ("mesh",)]
    values = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.floats(allow_nan=True),
                       st.text(max_size=5), st.lists(st.integers(-1, 3), max_size=3),
                       st.just({}), st.just("__delete__"))
    return st.tuples(st.sampled_from(paths), values)


@settings(max_examples=40, deadline=None)
@given(mutation=_mutations({}))
def test_malformed_design_files_fail_with_one_line(tmp_path_factory, mutation):
    path, value = mutation
    data = json.loads(open(EXAMPLE).read())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value == "__delete__":
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    f = tmp_path_factory.mktemp("bad") / "design.json"
    f.write_text(json.dumps(data))
    try:
        Design.from_json(f)
    except InputError:
        pass
    else:
        return                                                  # the mutation was still valid
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        rc = main(["evaluate", "--workload", "llama3.1-8b", "--node", "3nm", "--design", str(f)])
    err = buf.getvalue()
    assert rc == 2
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", ["", "{", "[]", "null", "\x00\x01", '{"schema_version": 2}'])
def test_garbage_files(tmp_path, content, capsys):
    f = tmp_path / "d.json"
    f.write_text(content)
    rc = main(["evaluate", "--workload", "llama3.1-8b", "--node", "3nm", "--design", str(f)])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1


def test_cli_process_exit_code_and_single_line():
    # Through the installed console entry point, as a user runs it.
    r = subprocess.run([sys.executable, "-m", "explorer", "evaluate", "--workload", "nope",
                        "--node", "3nm", "--design", EXAMPLE], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    r = subprocess.run([sys.executable, "-m", "explorer", "evaluate", "--workload", "llama3.1-8b",
                        "--node", "4nm", "--design", EXAMPLE], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown node" in r.stderr


def test_cli_evaluate_json():
    r = subprocess.run([sys.executable, "-m", "explorer", "evaluate", "--workload", "llama3.1-8b",
                        "--node", "3nm", "--design", EXAMPLE, "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["feasible"] and s["decode_tokens_per_s"] > 0 and s["area_mm2"] < 858
    assert s["bound"]["decode"] in ("compute", "scratchpad", "noc", "offchip")
