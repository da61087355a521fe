"""``llm2silicon flow``: a real end-to-end run on a small budget, then the orchestration
(stage reuse, reruns after a changed input, failures, partial runs, bad input) with the
back-end stages replaced by fast stand-ins, and every ``--workload`` form through it."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest

import explorer.flow as flow_mod
from explorer.cli import main
from explorer.errors import InputError
from explorer.flow import STAGES, FlowConfig, read_flow_json, run_flow
from explorer.workloads import load_workload

FIXTURES = Path(__file__).parent / "fixtures"
TINYLLAMA = FIXTURES / "TinyLlama-1.1B" / "config.json"
#: TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T, safetensors total on its model page
#: (tests/fixtures/TinyLlama-1.1B/SOURCE.md).
TINYLLAMA_PARAMS = 1_100_048_384


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "sim" not in p.parts}


# -------------------------------------------------------------------------------------------
# The real flow, every stage, on a small budget.
# -------------------------------------------------------------------------------------------
def _check_run(out: Path, stages: dict, expect_done: tuple[str, ...]) -> None:
    assert [s for s in STAGES if stages[s]["status"] != "done"] == \
        [s for s in STAGES if s not in expect_done]
    assert all(stages[s]["seconds"] > 0 and not stages[s]["reused"] for s in expect_done)
    design = json.loads((out / "design.json").read_text())
    report = (out / "report.html").read_text()
    assert design["name"] in report
    if "generate" in expect_done:
        manifest = json.loads((out / "hw" / "manifest.json").read_text())
        assert manifest["top"] and manifest["tile_modules"]
        for name in ("filelist.f", "constraints.sdc", "config.mk", "README.md"):
            assert (out / "hw" / name).is_file(), name
        files = [f.strip() for f in (out / "hw" / "filelist.f").read_text().splitlines()]
        assert files and all((out / "hw" / f).is_file() for f in files if f)
    if "synth" in expect_done:
        synth = json.loads((out / "synth.json").read_text())
        assert synth["design"] == design["name"] and synth["mesh_total"]["cells"] > 0
    if "verify" in expect_done:
        verify = json.loads((out / "verify.json").read_text())
        assert verify["design"] == design["name"] and 1 <= len(verify["points"]) <= 3


def _rerun_reuses_everything(args: list[str], out: Path, rc: int, capsys) -> None:
    before = _hashes(out)
    assert main(args) == rc
    again = json.loads(capsys.readouterr().out)["stages"]
    assert all(again[s]["reused"] for s in STAGES if again[s]["status"] == "done")
    after = _hashes(out)
    assert {k: v for k, v in after.items() if k != "flow.json"} == \
        {k: v for k, v in before.items() if k != "flow.json"}


def test_flow_end_to_end_ci(tmp_path, capsys):
    """The CI size: the real search at the default budget (the GA's 2,000 evaluations take
    25-65 s and settle on a one-tile design, so RTL conversion stays short; 400 gave a
    two-class 2 x 1 mesh whose conversion took 4 minutes), Verilog and hand-off files,
    report; Yosys and Verilator left out (minutes per tile: see the expensive test)."""
    out = tmp_path / "run"
    args = ["flow", "--workload", "smolvlm-256m", "--node", "28nm", "--mode", "low-power",
            "--skip", "synth,verify", "--out", str(out), "--json"]
    assert main(args) == 0
    stages = json.loads(capsys.readouterr().out)["stages"]
    _check_run(out, stages, ("explore", "generate", "report"))
    assert stages["synth"]["message"] == stages["verify"]["message"] == "skipped (--skip)"
    assert "synth: not run (skipped (--skip))" in (out / "report.html").read_text()
    _rerun_reuses_everything(args, out, 0, capsys)


@pytest.mark.expensive
def test_flow_end_to_end_all_stages(tmp_path, capsys):
    """The README's main job, every stage (about 10 minutes on 2 cores)."""
    out = tmp_path / "run"
    args = ["flow", "--workload", "smolvlm-256m", "--node", "28nm", "--mode", "low-power",
            "--out", str(out), "--json"]
    rc = main(args)
    stages = json.loads(capsys.readouterr().out)["stages"]
    verify = json.loads((out / "verify.json").read_text())
    assert rc == (0 if verify["functional_pass"] else 1)
    _check_run(out, stages, STAGES)
    assert "not run" not in (out / "report.html").read_text()
    _rerun_reuses_everything(args, out, rc, capsys)


# -------------------------------------------------------------------------------------------
# Orchestration, with stand-ins for generate / synth / verify (no RTL tools).
# -------------------------------------------------------------------------------------------
class Calls:
    def __init__(self) -> None:
        self.n = {"generate": 0, "synth": 0, "verify": 0}


@pytest.fixture
def fake_back_end(monkeypatch) -> Calls:
    """generate/synth/verify write documents of the right shape and count their calls."""
    calls = Calls()

    def generate(fl):
        calls.n["generate"] += 1
        (fl.out / "hw").mkdir(exist_ok=True)
        d = json.loads((fl.out / "design.json").read_text())
        (fl.out / "hw" / "manifest.json").write_text(json.dumps({"top": d["name"],
                                                                "tile_modules": []}))
        (fl.out / "hw" / "filelist.f").write_text("rtl/top.v\n")
        return "stand-in"

    def synth(fl):
        calls.n["synth"] += 1
        flow_mod._write_json(fl.out / "synth.json", {"design": "stand-in", "tiles": []})
        return "stand-in"

    def verify(fl):
        calls.n["verify"] += 1
        flow_mod._write_json(fl.out / "verify.json", {"points": [], "functional_pass": True})
        return "stand-in"

    monkeypatch.setattr(flow_mod, "_generate", generate)
    monkeypatch.setattr(flow_mod, "_synth", synth)
    monkeypatch.setattr(flow_mod, "_verify", verify)
    return calls


def _config(**kw) -> FlowConfig:
    base = {"workload": "smolvlm-256m", "node": "28nm", "mode": "low-power", "budget": 8}
    return FlowConfig(**(base | kw))


def test_rerun_skips_done_stages_and_redoes_changed_ones(tmp_path, fake_back_end):
    out = tmp_path / "run"
    first = run_flow(_config(), out)
    assert first.ok and fake_back_end.n == {"generate": 1, "synth": 1, "verify": 1}
    doc = read_flow_json(out)
    assert all(doc["stages"][s]["status"] == "done" for s in STAGES)
    second = run_flow(_config(), out)
    assert all(r.reused for r in second.stages.values())
    assert fake_back_end.n == {"generate": 1, "synth": 1, "verify": 1}
    # A changed design (its inputs) reruns the back end and the report, not the search.
    d = json.loads((out / "design.json").read_text())
    d["clock_mhz"] = 11.0
    (out / "design.json").write_text(json.dumps(d))
    third = run_flow(_config(), out)
    assert third.stages["explore"].reused and not third.stages["report"].reused
    assert fake_back_end.n == {"generate": 2, "synth": 2, "verify": 2}
    # A deleted output reruns its stage only.
    (out / "synth.json").unlink()
    run_flow(_config(), out)
    assert fake_back_end.n == {"generate": 2, "synth": 3, "verify": 2}


def test_failed_stage_is_recorded_and_reported(tmp_path, fake_back_end, monkeypatch, capsys):
    def broken(fl):
        raise flow_mod._StageFailed("synthesis check failed: latch in tile0.q")

    monkeypatch.setattr(flow_mod, "_synth", broken)
    out = tmp_path / "run"
    assert main(["flow", "--workload", "smolvlm-256m", "--node", "28nm", "--mode", "low-power",
                 "--budget", "8", "--out", str(out)]) == 1
    doc = read_flow_json(out)
    assert doc["stages"]["synth"]["status"] == "failed"
    assert doc["stages"]["synth"]["message"] == "synthesis check failed: latch in tile0.q"
    assert doc["stages"]["verify"]["status"] == "done"          # independent of synth
    report = (out / "report.html").read_text()
    assert "synth: not run (synthesis check failed: latch in tile0.q)" in report
    capsys.readouterr()


def test_missing_verifier_is_not_run(tmp_path, fake_back_end, monkeypatch):
    def missing(fl):
        raise flow_mod._StageSkipped("sim.verify is not available (no module named sim.verify)")

    monkeypatch.setattr(flow_mod, "_verify", missing)
    res = run_flow(_config(), tmp_path / "run")
    assert res.stages["verify"].status == "not run" and not res.ok
    assert res.stages["report"].status == "done"


def test_other_settings_in_the_same_directory_are_refused(tmp_path, fake_back_end):
    out = tmp_path / "run"
    run_flow(_config(), out)
    before = _hashes(out)
    with pytest.raises(InputError, match=r"holds a flow run with other settings \(budget differ\)"):
        run_flow(_config(budget=9), out)
    assert _hashes(out) == before


def test_explore_directory_needs_resume(tmp_path, fake_back_end):
    out = tmp_path / "run"
    assert main(["explore", "--workload", "smolvlm-256m", "--node", "28nm", "--mode",
                 "low-power", "--agent", "ga", "--budget", "8", "--out", str(out), "--json"]) == 0
    with pytest.raises(InputError, match=r"pass --resume"):
        run_flow(_config(), out)
    res = run_flow(_config(), out, resume=True)        # same search: nothing evaluated again
    assert res.ok and "0 now" in res.stages["explore"].message


# -------------------------------------------------------------------------------------------
# Any model: --workload forms through the flow.
# -------------------------------------------------------------------------------------------
def test_tinyllama_config_json_params_and_flow(tmp_path, fake_back_end):
    """A Llama-family model that is not built in: its config.json gives the published
    parameter count exactly, and the flow explores and reports it."""
    assert load_workload(str(TINYLLAMA)).params == TINYLLAMA_PARAMS
    res = run_flow(_config(workload=str(TINYLLAMA), mode="performance", node="7nm"),
                   tmp_path / "run")
    assert res.ok
    ppa = json.loads((tmp_path / "run" / "ppa.json").read_text())
    assert ppa["run"]["workload"] == str(TINYLLAMA)
    assert "TinyLlama-1.1B" in (tmp_path / "run" / "report.html").read_text()


def test_onnx_and_torch_module_through_flow(tmp_path, fake_back_end, monkeypatch):
    import torch

    monkeypatch.syspath_prepend(str(FIXTURES))
    from tiny_llama import TinyLlama

    onnx_path = tmp_path / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TinyLlama().eval(), (torch.zeros(1, 8, dtype=torch.long),),
                          str(onnx_path), dynamo=False, input_names=["input_ids"],
                          output_names=["logits"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"}})
    spec = f"{FIXTURES / 'tiny_llama.py'}:TinyLlama"
    for i, workload in enumerate((str(onnx_path), spec)):
        res = run_flow(_config(workload=workload, mode="performance"), tmp_path / f"run{i}")
        assert res.ok, res.stages
        assert load_workload(workload).params == sum(p.numel() for p in TinyLlama().parameters())


def test_unsupported_op_is_named(tmp_path, capsys):
    """An ONNX graph (embedding -> Relu -> head) whose Relu the importer does not map."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    table = numpy_helper.from_array(np.zeros((10, 4), np.float32), "table")
    weight = numpy_helper.from_array(np.zeros((4, 10), np.float32), "W")
    nodes = [helper.make_node("Gather", ["table", "input_ids"], ["e"], name="embed"),
             helper.make_node("Relu", ["e"], ["a"], name="act"),
             helper.make_node("MatMul", ["a", "W"], ["logits"], name="head")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["b", "s"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [table, weight])
    path = tmp_path / "relu.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]),
                    str(path))
    assert main(["flow", "--workload", str(path), "--node", "28nm", "--out",
                 str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: unsupported op 'Relu' (node act) in relu.onnx"]
    assert not (tmp_path / "run").exists()


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v", *os.sys.argv[1:]]))
