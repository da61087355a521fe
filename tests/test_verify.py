"""``sim.verify.verify_design`` and ``llm2silicon verify``: point selection, the JSON
contract, bad input (exit 2) and a quick run on the RTL of a small design."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main as cli_main
from explorer.design import Design, MeshConfig, TileConfig
from sim.toolchain import verilator_available
from sim.verify import representative_points, scaled_op, verify_design

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: The CI tile of tests/test_rtl_sim.py, so both files share the two Verilator builds.
TILE = TileConfig(fetch=1, vlen=128, stations=4, xdp=1, vdp=1, xr_wp=1, vr_wp=1,
                  dmem_kib=64, imem_kib=1, wmem_kib=256, wmem_kind="sram")
SMALL = Design("verify small", "7nm", MeshConfig.uniform(2, 2, TILE, flit_bits=64))
KEYS = ("op", "kind", "shape", "tile_class", "tiles", "model_cycles", "rtl_cycles",
        "cycle_error", "functional_pass", "max_abs_err_vs_float64")


def test_points_cover_the_workloads_kinds_on_the_design_classes():
    d = Design.from_json(EXAMPLES / "smolvlm-256m_28nm_lp.json")
    pts = representative_points(d, "smolvlm-256m")
    kinds = [p.op.kind for p in pts]
    for k in ("matmul", "attn_qk", "attn_av", "softmax", "rmsnorm", "silu_mul", "add"):
        assert k in kinds, kinds
    assert [p.tiles for p in pts].count(4) == 1 and pts[-1].group == (2, 2)
    for p in pts:     # the design's pipeline, memories cut to the simulated op
        t, c = p.tile, d.mesh.tile_classes[p.tile_class]
        assert (t.fetch, t.vlen, t.stations, t.vdp, t.imem_kib) == \
            (c.fetch, c.vlen, c.stations, c.vdp, c.imem_kib)
        assert p.flit_bits == d.mesh.flit_bits
    quick = representative_points(d, "smolvlm-256m", quick=True)
    assert len(quick) <= 3 and sum(p.tiles == 1 for p in quick) >= 1 and quick[-1].tiles == 4


def test_a_one_row_mesh_gets_a_multi_tile_point_on_its_1x2_window():
    """A 1 x 2 mesh has no 2 x 2 window: the multi-tile matmul runs on 1 x 2 (its NoC), and a
    1 x 1 mesh has none."""
    tile = TILE
    for rows, cols, group in ((1, 2, (1, 2)), (3, 1, (2, 1)), (1, 1, None)):
        d = Design("row", "7nm", MeshConfig.uniform(rows, cols, tile, flit_bits=64))
        pts = representative_points(d, "smolvlm-256m", quick=True)
        multi = [p for p in pts if p.tiles > 1]
        if group is None:
            assert multi == []
        else:
            assert [p.group for p in multi] == [group] and multi[0].op.kind == "matmul"
            assert multi[0].name.startswith(f"matmul_{group[0]}x{group[1]}:")


def test_scaled_ops_keep_kind_and_structure():
    from explorer.workloads.graph import Op
    qk = scaled_op(Op("q", "attn_qk", "decoder", 0, batch=36, m=1, k=64, n=4096), TILE, share=3)
    assert (qk.kind, qk.k, qk.n, qk.batch % 3) == ("attn_qk", 64, 128, 0)
    mm = scaled_op(Op("m", "matmul", "decoder", 0, m=1, k=4096, n=14336), TILE)
    assert (mm.m, mm.k, mm.n) == (1, 256, 128) and mm.k % TILE.lanes_fp16 == 0


def test_cli_rejects_bad_input(tmp_path, capsys):
    assert cli_main(["verify", "--design", str(tmp_path / "missing.json"),
                     "--workload", "smolvlm-256m"]) == 2
    assert "error:" in capsys.readouterr().err
    (tmp_path / "d.json").write_text(SMALL.to_json())
    assert cli_main(["verify", "--design", str(tmp_path / "d.json"),
                     "--workload", "no-such-model"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
    with pytest.raises(TypeError):
        verify_design("not a design", "smolvlm-256m")


@pytest.mark.skipif(not verilator_available(), reason="Verilator not installed")
def test_verify_quick_json_contract(tmp_path, capsys):
    (tmp_path / "d.json").write_text(SMALL.to_json())
    out = tmp_path / "run" / "verify.json"
    assert cli_main(["verify", "--design", str(tmp_path / "d.json"), "--workload",
                     "smolvlm-256m", "--quick", "--json", "--out", str(out)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads(out.read_text())
    assert 2 <= len(doc["points"]) <= 3
    for p in doc["points"]:
        assert set(KEYS) <= set(p)
        assert p["functional_pass"] and abs(p["cycle_error"]) <= 0.15, p
    assert {p["tiles"] for p in doc["points"]} == {1, 4}
    assert doc["functional_pass"] is True
    assert doc["cycle_error_max"] >= doc["cycle_error_median"] >= 0
    assert set(doc["verilator_cycles_per_s"]) == {"single_tile", "mesh_2x2"}
    assert all(v > 0 for v in doc["verilator_cycles_per_s"].values())
    assert doc["elapsed_s"] > 0
