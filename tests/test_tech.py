"""Technology data: loading, sources, published anchors, recomputed derivations, CLI."""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from explorer import design
from explorer.cli import main
from explorer.errors import InputError
from explorer.tech import (
    DATA_PATH,
    MAX_POWER_DENSITY_W_PER_MM2,
    NODE_NAMES,
    OFFCHIP_FIGURES,
    OFFCHIP_KINDS,
    RETICLE_MM2,
    TECH_FIGURES,
    TechDataError,
    TechNode,
    all_nodes,
    all_offchip,
    load_node,
    load_offchip,
    parse_nodes,
    parse_offchip,
)

FEATURE = {n: int(n.removesuffix("nm")) for n in NODE_NAMES}

# --- published inputs, typed in independently of the data file ---------------------------
# Horowitz ISSCC 2014, 45 nm / 0.9 V (pJ).
H14 = {"fp16_mul": 1.1, "fp16_add": 0.4, "fp32_add": 0.9, "int8_mul": 0.2, "int32_add": 0.1,
       "instruction": 70.0, "icache": 25.0}
# Stillmaker & Baas 2017 energy polynomials E(V) = b2 V^2 + b1 V + b0 (HP models).
SB17 = {45: (1.018, -0.3107, 0.1539), 32: (0.8367, -0.4341, 0.1701), 20: (0.373, -0.1582, 0.04104)}
# TSMC iso-speed power claims chained from 28 nm (D1); 14 nm uses 16FF+ vs 28HPM.
PW = {28: 1.0, 22: 0.65, 14: 0.30}
PW[10] = PW[14] * 0.65
PW[7] = PW[10] * 0.60
PW[5] = PW[7] * 0.70
PW[3] = PW[5] * (0.70 + 0.75) / 2
# Iso-power speed claims (D1), used for FO4 scaling in D7.
SPEED = {28: 1.0, 22: 1.15, 14: 1.65}
SPEED[10] = SPEED[14] * 1.15
SPEED[7] = SPEED[10] * 1.20
# CSET logic densities, MTr/mm^2 (22 nm and 3 nm derived from foundry area claims).
DENSITY = {28: 15.3, 22: 15.3 / 0.9, 14: 28.9, 10: 52.5, 7: 96.3, 5: 138.2, 3: 138.2 * 1.6}
# Published HD SRAM bitcells, um^2.
SRAM_CELL = {28: 0.127, 22: 0.092, 14: 0.064, 10: 0.042, 7: 0.027, 5: 0.021, 3: 0.021}
VDD = {28: 0.9, 22: 0.8, 14: 0.8, 10: 0.75, 7: 0.75, 5: 0.70, 3: 0.65}
FMAX = {"3nm": 1000, "5nm": 820, "7nm": 570, "10nm": 520, "14nm": 400, "22nm": 250, "28nm": 250}


def sb17(node: int, v: float) -> float:
    b2, b1, b0 = SB17[node]
    return b2 * v * v + b1 * v + b0


def e28(v: float = 0.9) -> float:
    """28 nm by linear interpolation between HP32 and HP20 (the note's recipe)."""
    return sb17(32, v) + (28 - 32) / (20 - 32) * (sb17(20, v) - sb17(32, v))


E28_OVER_E45 = e28() / sb17(45, 0.9)
E40 = sb17(45, 0.9) + (40 - 45) / (32 - 45) * (sb17(32, 0.9) - sb17(45, 0.9))


def approx(x: float, rel: float = 2e-3) -> object:
    return pytest.approx(x, rel=rel)


# --- loading -----------------------------------------------------------------------------

def test_every_node_loads_in_order():
    nodes = all_nodes()
    assert tuple(n.name for n in nodes) == NODE_NAMES
    assert [n.feature_nm for n in nodes] == [3, 5, 7, 10, 14, 22, 28]
    for n in nodes:
        assert isinstance(n, TechNode)
        assert load_node(n.name) is n          # cached: the same object every time


@pytest.mark.parametrize("spelling", ["3nm", "3", "3NM", " 3 nm ", 3])
def test_node_name_spellings(spelling):
    assert load_node(spelling).name == "3nm"


@pytest.mark.parametrize("bad", ["4nm", "", "nm", "3nmm", "x"])
def test_unknown_node_is_input_error(bad):
    with pytest.raises(InputError, match=rf"^unknown node '{bad}'; known: 3nm, 5nm, 7nm, 10nm, "
                                         r"14nm, 22nm, 28nm$"):
        load_node(bad)


def test_offchip_kinds_match_design_and_load():
    assert OFFCHIP_KINDS == design.OFFCHIP_KINDS
    assert tuple(m.name for m in all_offchip()) == OFFCHIP_KINDS
    assert load_offchip("HBM3").name == "hbm3"
    with pytest.raises(InputError, match=r"^unknown off-chip memory 'ddr6'; known: lpddr4x, "
                                         r"lpddr5, lpddr5x, hbm2e, hbm3$"):
        load_offchip("ddr6")


def test_data_file_ships_in_package_with_header():
    assert DATA_PATH.parent.name == "tech" and DATA_PATH.is_file()
    head = DATA_PATH.read_text().split("schema_version")[0]
    for word in ("Units", "quoted", "derived", "assumed", "Modelling assumptions"):
        assert word in head


# --- sources -------------------------------------------------------------------------------

def _all_records():
    return [(n, TECH_FIGURES) for n in all_nodes()] + [(m, OFFCHIP_FIGURES) for m in all_offchip()]


def test_every_figure_has_a_source():
    for record, names in _all_records():
        assert set(record.sources) == set(names), record.name
        for name in names:
            src = record.sources[name]
            assert src.status in ("quoted", "derived", "assumed")
            assert src.ref.strip()
            if src.status != "quoted":
                assert len(src.note) > 10, (record.name, name)
            else:
                assert src.url.startswith("https://") or src.url.startswith("http://"), \
                    (record.name, name)


def test_derived_and_assumed_figures_explain_themselves():
    # A derived node figure names its derivation (D1-D16 in docs/tech_nodes.md); every
    # derived off-chip figure spells its formula; an assumed figure gives a reason.
    for n in all_nodes():
        for name in TECH_FIGURES:
            src = n.sources[name]
            if src.status == "derived":
                assert re.search(r"\(D\d+|D\d+\)|\bD\d+\b", src.ref + " " + src.note), (n.name, name)
    for m in all_offchip():
        for name in OFFCHIP_FIGURES:
            src = m.sources[name]
            if src.status == "derived":
                assert re.search(r"\d.*\s(x|/)\s.*\d", src.note), (m.name, name, src.note)
    for record, names in _all_records():
        for name in names:
            if record.sources[name].status == "assumed":
                assert len(record.sources[name].note) >= 40, (record.name, name)


# --- published values and sanity anchors ---------------------------------------------------

def test_fmax_is_the_papers_table_11():
    assert {n.name: n.fmax_mhz for n in all_nodes()} == FMAX


def test_quoted_anchors():
    assert load_node("28nm").sram_bitcell_um2 == 0.127       # TSMC 28 nm HD cell
    assert load_node("3nm").sram_bitcell_um2 == approx(0.021, rel=0.06)
    assert 0.05 <= load_node("3nm").fp16_mac_pj <= 0.07
    for kind in ("hbm2e", "hbm3"):
        assert 3.9 <= load_offchip(kind).pj_per_bit <= 6.0
    assert load_offchip("lpddr5x").gbytes_per_s_per_channel == approx(17.07, rel=5e-3)
    assert RETICLE_MM2 == 858.0
    assert MAX_POWER_DENSITY_W_PER_MM2 == approx(700 / 814)


def _by_feature_descending():
    return sorted(all_nodes(), key=lambda n: -n.feature_nm)


@pytest.mark.parametrize("figure", ["fp16_mac_pj", "int8_mac_pj", "fp16_alu_pj", "instr_overhead_pj",
                                    "flop_clock_fj", "router_pj_per_bit"])
def test_smaller_node_never_costs_more_energy_at_equal_vdd(figure):
    # Compare at a common supply inside every node's DVFS range.
    v = 0.7
    nodes = _by_feature_descending()
    for n in nodes:
        assert n.vdd_min_v <= v <= n.vdd_max_v
    energies = [getattr(n, figure) * n.dyn_energy_scale(v) for n in nodes]
    assert all(a >= b for a, b in zip(energies, energies[1:], strict=False)), energies


@pytest.mark.parametrize("figure", ["sram_bitcell_um2", "rom_bitcell_um2", "nand2_area_um2",
                                    "sram_read_pj_per_bit", "rom_read_pj_per_bit", "vdd_nom_v"])
def test_shrinking_never_grows(figure):
    values = [getattr(n, figure) for n in _by_feature_descending()]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False)), values


def test_memory_density_properties():
    for n in all_nodes():
        assert n.sram_um2_per_bit == approx(n.sram_bitcell_um2 / n.sram_array_efficiency)
        assert n.rom_um2_per_bit < n.sram_um2_per_bit


# --- DVFS helpers ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NODE_NAMES)
def test_dvfs_at_nominal(name):
    n = load_node(name)
    assert n.fmax_mhz_at(n.vdd_nom_v) == approx(n.fmax_mhz, rel=1e-12)
    assert n.dyn_energy_scale(n.vdd_nom_v) == 1.0
    assert n.leakage_scale(n.vdd_nom_v) == 1.0
    assert n.fmax_mhz_at(n.vdd_min_v) < n.fmax_mhz < n.fmax_mhz_at(n.vdd_max_v)
    assert n.fmax_mhz_at(n.vth_v) == 0.0


@given(name=st.sampled_from(NODE_NAMES), a=st.floats(0, 1), b=st.floats(0, 1))
def test_lower_vdd_lowers_fmax_and_energy(name, a, b):
    n = load_node(name)
    lo, hi = sorted((a, b))
    v1 = n.vdd_min_v + lo * (n.vdd_max_v - n.vdd_min_v)
    v2 = n.vdd_min_v + hi * (n.vdd_max_v - n.vdd_min_v)
    if v2 - v1 < 1e-9:
        assert n.fmax_mhz_at(v1) == approx(n.fmax_mhz_at(v2), rel=1e-6)
        return
    assert n.fmax_mhz_at(v1) < n.fmax_mhz_at(v2)
    assert n.dyn_energy_scale(v1) < n.dyn_energy_scale(v2)
    assert n.leakage_scale(v1) < n.leakage_scale(v2)


def test_fmax_alpha_power_law_by_hand():
    # 3 nm: vth 0.251, Vnom 0.65, alpha 1.3; at 0.5 V the drive ratio is computed by hand.
    n = load_node("3nm")
    drive = lambda v: (v - n.vth_v) ** 1.3 / v   # noqa: E731
    assert n.fmax_mhz_at(0.5) == approx(1000 * drive(0.5) / drive(0.65), rel=1e-12)
    assert 500 < n.fmax_mhz_at(0.5) < 800


# --- recomputed derivations (the data file cannot drift silently) ---------------------------

def test_sb17_energy_ratio():
    # The corrigendum's check value: HP32 at 0.9 V = 0.4571.
    assert sb17(32, 0.9) == approx(0.4571, rel=1e-4)
    assert E28_OVER_E45 == approx(0.5319, rel=1e-3)


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d5_energy_chain(name):
    n, f = load_node(name), FEATURE[name]
    scale = E28_OVER_E45 * PW[f]
    assert n.fp16_mac_pj == approx((H14["fp16_mul"] + H14["fp32_add"]) * scale)
    assert n.int8_mac_pj == approx((H14["int8_mul"] + H14["int32_add"]) * scale)
    assert n.fp16_alu_pj == approx((H14["fp16_add"] + H14["fp16_mul"]) / 2 * scale)
    assert n.instr_overhead_pj == approx((H14["instruction"] - H14["icache"]) * scale)
    # D13: ALADDIN 40 nm register 9 fJ x E28/E40 x 1.5 clock tree x Pw.
    assert n.flop_clock_fj == approx(9.0 * e28() / E40 * 1.5 * PW[f])
    # D10: ISAAC router 0.081 pJ/bit at 32 nm x 0.813 (E28/E32) x Pw.
    assert n.router_pj_per_bit == approx(0.081 * 0.813 * PW[f])


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d2_d8_d14_areas(name):
    n, f = load_node(name), FEATURE[name]
    assert n.nand2_area_um2 == approx(4.0 / DENSITY[f])
    assert n.sram_bitcell_um2 == SRAM_CELL[f]
    assert n.rom_bitcell_um2 == approx(0.5 * SRAM_CELL[f])
    if f in (5, 3):
        # WikiChip macro density 32 Mib/mm^2 on a 0.021 um^2 cell -> array efficiency.
        assert n.sram_array_efficiency == approx(32 * 2**20 / 1e6 * 0.021, rel=0.01)


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d4_sram_and_rom_energy(name):
    n, f = load_node(name), FEATURE[name]
    if f == 28:
        read = 0.088 + (28 - 32) / (22 - 32) * (0.048 - 0.088)   # CACTI 32/22 nm interpolation
    else:
        read = 0.048 * math.sqrt(f / 22)                           # Accelergy sqrt(node) rule
    assert n.sram_read_pj_per_bit == approx(read)
    assert n.sram_write_pj_per_bit == approx(1.3 * read)
    assert n.rom_read_pj_per_bit == approx(read * math.sqrt(0.5))


@pytest.mark.parametrize(("name", "ps_per_mm"), [("7nm", 243.5), ("5nm", 255.6), ("3nm", 215.4),
                                                  ("28nm", 248.2)])
def test_d7_wire_delay(name, ps_per_mm):
    # t/L = 1.52 sqrt(FO4 r c); 7 nm by hand: FO4 4.96 ps, r 21.55 ohm/um, c 0.24 fF/um.
    by_hand = 1.52 * math.sqrt(4.96e-12 * 21.55 * 0.24e-15) * 1e15   # ps/mm
    assert by_hand == approx(243.5, rel=1e-3)
    assert load_node(name).wire_delay_ps_per_mm == approx(ps_per_mm)
    fo4_28 = 4.96 * SPEED[7] / SPEED[28]
    assert 1.52 * math.sqrt(fo4_28 * 1e-12 * 11.8 * 0.20e-15) * 1e15 == approx(248.2, rel=1e-3)


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d9_wire_energy(name):
    n, f = load_node(name), FEATURE[name]
    c_pf_per_mm = 0.20 if f >= 22 else 0.24
    assert n.wire_pj_per_bit_mm == approx(0.5 * c_pf_per_mm * VDD[f] ** 2 * 1.3)


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d11_d12_leakage(name):
    n, f = load_node(name), FEATURE[name]
    area_45_to_28 = 0.46 + (28 - 32) / (20 - 32) * (0.21 - 0.46)   # SB17 area matrix
    leak28 = 14.353185 / 0.532 * E28_OVER_E45 / area_45_to_28 * 0.70
    finfet = 0.79 if f <= 16 else 1.0
    logic = leak28 * PW[f] * finfet * DENSITY[f] / DENSITY[28]
    assert n.logic_leakage_mw_per_mm2 == approx(logic)
    assert n.sram_leakage_mw_per_mm2 == approx(logic * 0.30 / 0.70)


@pytest.mark.parametrize("name", NODE_NAMES)
def test_d15_voltages(name):
    n, f = load_node(name), FEATURE[name]
    assert n.vdd_nom_v == VDD[f]
    assert n.vth_v == approx(0.2315 / 0.6 * VDD[f], rel=3e-3)      # CACTI 22 nm lop Vth/Vdd
    assert n.vdd_min_v == approx(n.vth_v + 0.20, rel=1e-9)
    assert n.vdd_max_v == approx(1.10 * VDD[f], rel=1e-9)


def test_d16_offchip():
    mem = {m.name: m for m in all_offchip()}
    # bandwidth = MT/s x 2 bytes (x16) or Gb/s x 1024 / 8 (HBM stack)
    assert mem["lpddr4x"].gbytes_per_s_per_channel == approx(4266.67 * 2 / 1000)
    assert mem["lpddr5"].gbytes_per_s_per_channel == approx(6400 * 2 / 1000)
    assert mem["lpddr5x"].gbytes_per_s_per_channel == approx(8533 * 2 / 1000)
    assert mem["hbm2e"].gbytes_per_s_per_channel == approx(3.6 * 1024 / 8)
    assert mem["hbm3"].gbytes_per_s_per_channel == approx(6.4 * 1024 / 8)
    # energy chain: Samsung -30 % (LPDDR5 vs 4X), -20 % (5X vs 5); HBM3 between HBM2E and HBM3E
    assert mem["lpddr5"].pj_per_bit == approx(0.70 * mem["lpddr4x"].pj_per_bit)
    assert mem["lpddr5x"].pj_per_bit == approx(0.80 * mem["lpddr5"].pj_per_bit)
    assert mem["hbm3"].pj_per_bit == approx((6.0 + 3.9) / 2)
    # LLMCompass transistor counts -> NAND2 kgates (4 transistors each)
    for k in ("lpddr4x", "lpddr5", "lpddr5x"):
        assert mem[k].controller_kgates_per_channel == approx(90_446_400 / 2 / 4 / 1000)
        assert mem[k].phy_area_mm2_per_channel == approx(1.45 / 2)
    for k in ("hbm2e", "hbm3"):
        assert mem[k].controller_kgates_per_channel == approx(552_743_000 / 4 / 1000)


# --- validation of the data file and of the record ------------------------------------------

@pytest.fixture
def raw():
    with DATA_PATH.open("rb") as f:
        return tomllib.load(f)


def test_parse_accepts_the_shipped_file(raw):
    assert set(parse_nodes(raw)) == set(NODE_NAMES)
    assert set(parse_offchip(raw)) == set(OFFCHIP_KINDS)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: d["node"]["3nm"].pop("fp16_mac_pj"), r"^node '3nm': figure 'fp16_mac_pj' is missing$"),
    (lambda d: d["node"]["5nm"].__setitem__("vth_v", 0.27),
     r"^node '5nm': figure 'vth_v' must be a table with value, status, ref, note, url, not a bare float$"),
    (lambda d: d["node"]["7nm"]["nand2_area_um2"].pop("url"), r"^node '7nm': figure 'nand2_area_um2' has no 'url'$"),
    (lambda d: d["node"]["7nm"]["nand2_area_um2"].__setitem__("value", -1.0),
     r"^node '7nm': figure 'nand2_area_um2' must be a positive number, not -1.0$"),
    (lambda d: d["node"]["7nm"]["nand2_area_um2"].__setitem__("status", "guessed"),
     r"^node '7nm': figure 'nand2_area_um2': Source.status must be quoted, derived or assumed, not 'guessed'$"),
    (lambda d: d["node"]["10nm"].__setitem__("gate_pitch_nm", {}), r"^node '10nm': unknown figure 'gate_pitch_nm'$"),
    (lambda d: d["node"].pop("22nm"), r"must be exactly 3nm, 5nm, 7nm, 10nm, 14nm, 22nm, 28nm; missing 22nm$"),
    (lambda d: d["node"]["28nm"]["vdd_min_v"].__setitem__("value", 0.3),
     r"^node '28nm': TechNode voltages must satisfy vth < vdd_min <= vdd_nom <= vdd_max"),
])
def test_parse_rejects_broken_data(raw, mutate, message):
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(TechDataError, match=message):
        parse_nodes(data)


def test_parse_rejects_broken_offchip(raw):
    data = copy.deepcopy(raw)
    data["offchip"]["hbm3"]["pj_per_bit"]["status"] = "assumed"
    data["offchip"]["hbm3"]["pj_per_bit"]["note"] = ""
    with pytest.raises(TechDataError, match=r"^off-chip memory 'hbm3': figure 'pj_per_bit': "
                                            r"Source.note must explain a assumed figure"):
        parse_offchip(data)


def test_technode_validates():
    n = load_node("7nm")
    with pytest.raises(ValueError, match=r"^TechNode.fp16_mac_pj must be positive and finite, not -1$"):
        replace(n, fp16_mac_pj=-1)
    with pytest.raises(TypeError, match=r"^TechNode.fp16_mac_pj must be a number, not 'x'$"):
        replace(n, fp16_mac_pj="x")
    with pytest.raises(ValueError, match=r"^TechNode.logic_utilization must be at most 1, not 1.5$"):
        replace(n, logic_utilization=1.5)


# --- command line ---------------------------------------------------------------------------

def test_cli_nodes_json(capsys):
    assert main(["nodes", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert list(data["nodes"]) == list(NODE_NAMES)
    assert data["nodes"]["3nm"]["fmax_mhz"]["value"] == 1000.0
    assert data["nodes"]["3nm"]["fp16_mac_pj"]["unit"] == "pJ"
    assert set(data["nodes"]["28nm"]) == {"feature_nm", *TECH_FIGURES}
    for fig in data["nodes"]["14nm"].values():
        if isinstance(fig, dict):
            assert fig["status"] in ("quoted", "derived", "assumed") and fig["ref"]
    assert list(data["offchip"]) == list(OFFCHIP_KINDS)
    assert data["constants"]["RETICLE_MM2"]["value"] == 858.0


def test_cli_nodes_tables(capsys):
    assert main(["nodes"]) == 0
    out = capsys.readouterr().out
    for name in (*NODE_NAMES, *OFFCHIP_KINDS, "fp16_mac_pj [pJ]", "1,000 Q"):
        assert name in out
    assert main(["nodes", "--sources"]) == 0
    out = capsys.readouterr().out
    assert "arxiv.org/abs/2604.07526" in out and "Horowitz" in out
    assert main(["nodes", "--memories"]) == 0
    out = capsys.readouterr().out
    assert "hbm3" in out and "fp16_mac_pj" not in out


def test_cli_unknown_flag_is_one_line_exit_2(capsys):
    assert main(["nodes", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
