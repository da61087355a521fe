"""Malformed input through the real command line: every case exits 2 with exactly one
``error:`` line on stderr and no traceback, and leaves existing output files untouched.

The corpus lives in ``tests/malformed/`` (``index.json`` says what each file is); CLI
argument cases are listed below. Every case runs the command line in its own process, so
nothing of the test process (captured streams, exception handlers) can hide a traceback:
a forked child of a process that imported the CLI once (``fork_cli``: the child runs
``sys.exit(main(argv))`` exactly as the ``llm2silicon`` script does, with its own stdout
and stderr files) for speed, and ``python -m explorer`` for a sample of cases, which
checks the real entry point the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "malformed"
INDEX = json.loads((HERE / "index.json").read_text())
GOOD = str(HERE / "good_design.json")
DESIGNS = sorted(p for p in INDEX if p.startswith("designs/"))
CONFIGS = sorted(p for p in INDEX if p.startswith("configs/"))
ONNX = sorted(p for p in INDEX if p.startswith("onnx/"))


def spawn_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m explorer ARGS`` in a fresh interpreter."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "explorer", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def fork_cli(args: list[str], cwd: Path, timeout_s: float = 90.0) -> subprocess.CompletedProcess:
    """The CLI in a forked child (imports shared with this process, ~50x faster to start)."""
    from explorer.cli import _register, main

    _register()                                   # import every command before forking
    out_f, err_f = cwd / ".cli-stdout", cwd / ".cli-stderr"
    pid = os.fork()
    if pid == 0:                                  # child: behave like the console script
        code = 1
        try:
            os.chdir(cwd)
            fd_out = os.open(out_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            fd_err = os.open(err_f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd_out, 1)
            os.dup2(fd_err, 2)
            sys.stdout = open(1, "w", closefd=False)   # noqa: SIM115
            sys.stderr = open(2, "w", closefd=False)   # noqa: SIM115
            sys.argv = ["llm2silicon", *args]
            code = main(args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:                     # what Python would print, then exit 1
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    deadline = time.monotonic() + timeout_s
    while True:                                   # bad input must fail fast, not run on
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"llm2silicon {' '.join(args)} still running after {timeout_s} s")
        time.sleep(0.05)
    rc = os.waitstatus_to_exitcode(status)
    out, err = out_f.read_text(), err_f.read_text()
    out_f.unlink()
    err_f.unlink()
    return subprocess.CompletedProcess(args, rc, out, err)


run_cli = fork_cli if hasattr(os, "fork") else spawn_cli


def assert_one_line_error(r: subprocess.CompletedProcess, args: list[str]) -> str:
    shown = f"llm2silicon {' '.join(args)}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    assert r.returncode == 2, shown
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 12, shown
    assert "Traceback" not in r.stderr + r.stdout, shown
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_untouched(folder: Path, before: dict[str, str]) -> None:
    """Every file that existed keeps its bytes (a failing command may add nothing either,
    except that ``explore`` keeps an empty results database it opened)."""
    after = snapshot(folder)
    assert {k: after.get(k) for k in before} == before
    assert set(after) - set(before) <= {"results.sqlite"}


@pytest.fixture
def outdir(tmp_path) -> Path:
    """An output folder that already holds files a failing command must not touch."""
    out = tmp_path / "out"
    (out / "hw").mkdir(parents=True)
    for name in ("design.json", "report.html", "synth.json", "hw/manifest.json", "flow.json"):
        (out / name).write_text(f"previous {name}\n")
    return out


def test_index_lists_every_corpus_file():
    on_disk = {str(p.relative_to(HERE)) for p in HERE.rglob("*")
               if p.is_file() and p.name not in ("index.json", "good_design.json")}
    assert on_disk == set(INDEX)


# -------------------------------------------------------------------------------------------
# Design files through every command that reads one (each command of a file in one process
# would be faster, but then a crash in one case could not be told from the others).
# -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("design", DESIGNS)
def test_design_file_evaluate(design, outdir):
    args = ["evaluate", "--workload", "smolvlm-256m", "--node", "28nm", "--design",
            str(HERE / design)]
    assert_one_line_error(run_cli(args, outdir.parent), args)


@pytest.mark.parametrize("design", ["designs/bad_json.json", "designs/schema_version_2.json",
                                    "designs/dmem_negative.json", "designs/unknown_node.json",
                                    "designs/binary.json", "designs/placement_overlap.json"])
@pytest.mark.parametrize("command", ["generate", "synth", "verify"])
def test_design_file_back_end(command, design, outdir):
    before = snapshot(outdir)
    args = {"generate": ["generate", "--design", str(HERE / design), "--out", str(outdir / "hw")],
            "synth": ["synth", "--design", str(HERE / design), "--out", str(outdir)],
            "verify": ["verify", "--design", str(HERE / design), "--workload", "smolvlm-256m",
                       "--quick", "--out", str(outdir / "verify.json")]}[command]
    assert_one_line_error(run_cli(args, outdir.parent), args)
    assert_untouched(outdir, before)


@pytest.mark.parametrize("config", CONFIGS + ONNX)
def test_model_file_workload_show(config, tmp_path):
    args = ["workload", "show", str(HERE / config)]
    assert_one_line_error(run_cli(args, tmp_path), args)


@pytest.mark.parametrize("config", ["configs/unsupported_architecture.json", "onnx/random_bytes.onnx"])
@pytest.mark.parametrize("command", ["explore", "flow", "evaluate"])
def test_model_file_search_commands(command, config, outdir):
    before = snapshot(outdir)
    w = str(HERE / config)
    args = {"explore": ["explore", "--workload", w, "--node", "28nm", "--out", str(outdir)],
            "flow": ["flow", "--workload", w, "--node", "28nm", "--budget", "4", "--out", str(outdir)],
            "evaluate": ["evaluate", "--workload", w, "--node", "28nm", "--design", GOOD]}[command]
    assert_one_line_error(run_cli(args, outdir.parent), args)
    assert_untouched(outdir, before)


# -------------------------------------------------------------------------------------------
# Command-line arguments.
# -------------------------------------------------------------------------------------------
W, N = ["--workload", "smolvlm-256m"], ["--node", "28nm"]
ARG_CASES = {
    "evaluate-unknown-node": ["evaluate", *W, "--node", "2nm", "--design", GOOD],
    "evaluate-node-mismatch": ["evaluate", *W, "--node", "3nm", "--design", GOOD],
    "evaluate-bad-phase": ["evaluate", *W, *N, "--design", GOOD, "--phase", "training"],
    "evaluate-seq-len-zero": ["evaluate", *W, *N, "--design", GOOD, "--seq-len", "0"],
    "evaluate-batch-not-int": ["evaluate", *W, *N, "--design", GOOD, "--batch", "two"],
    "evaluate-missing-design": ["evaluate", *W, *N, "--design", "no/such/design.json"],
    "evaluate-design-is-dir": ["evaluate", *W, *N, "--design", "."],
    "evaluate-missing-option": ["evaluate", *W, "--design", GOOD],
    "evaluate-unknown-option": ["evaluate", *W, *N, "--design", GOOD, "--colour", "red"],
    "explore-unknown-agent": ["explore", *W, *N, "--out", "OUT", "--agent", "oracle"],
    "explore-unknown-mode": ["explore", *W, *N, "--out", "OUT", "--mode", "turbo"],
    "explore-budget-zero": ["explore", *W, *N, "--out", "OUT", "--budget", "0"],
    "explore-budget-negative": ["explore", *W, *N, "--out", "OUT", "--budget", "-5"],
    "explore-seed-negative": ["explore", *W, *N, "--out", "OUT", "--seed", "-1"],
    "explore-bad-hp": ["explore", *W, *N, "--out", "OUT", "--hp", "population"],
    "explore-unknown-hp": ["explore", *W, *N, "--out", "OUT", "--agent", "ga", "--budget", "4",
                           "--hp", "no_such_knob=3"],
    "explore-out-is-file": ["explore", *W, *N, "--out", "OUT/design.json"],
    "explore-unknown-workload": ["explore", "--workload", "gpt-7", *N, "--out", "OUT"],
    "explore-missing-config": ["explore", "--workload", "no/such/config.json", *N, "--out", "OUT"],
    "explore-bad-module-spec": ["explore", "--workload", "no_such_module_xyz:Model", *N,
                                "--out", "OUT"],
    "flow-unknown-node": ["flow", *W, "--node", "1nm", "--out", "OUT"],
    "flow-unknown-mode": ["flow", *W, *N, "--mode", "eco", "--out", "OUT"],
    "flow-budget-zero": ["flow", *W, *N, "--budget", "0", "--out", "OUT"],
    "flow-jobs-zero": ["flow", *W, *N, "--jobs", "0", "--out", "OUT"],
    "flow-unknown-agent": ["flow", *W, *N, "--agent", "oracle", "--out", "OUT"],
    "flow-skip-unknown-stage": ["flow", *W, *N, "--skip", "report", "--out", "OUT"],
    "flow-out-is-file": ["flow", *W, *N, "--budget", "4", "--out", "OUT/report.html"],
    "flow-other-settings": ["flow", *W, *N, "--budget", "4", "--out", "OUT"],
    "report-missing-dir": ["report", "no/such/run"],
    "report-not-a-run": ["report", "OUT/hw"],
    "report-out-is-dir": ["report", "OUT", "--out", "OUT/hw"],
    "report-bad-design": ["report", "BADRUN"],
    "report-bad-ppa": ["report", "BADPPA"],
    "generate-jobs-zero": ["generate", "--design", GOOD, "--out", "OUT/hw", "--jobs", "0"],
    "synth-jobs-zero": ["synth", "--design", GOOD, "--jobs", "0"],
    "verify-unknown-workload": ["verify", "--design", GOOD, "--workload", "gpt-7", "--quick"],
    "workload-show-unknown": ["workload", "show", "gpt-7"],
    "workload-show-bad-phase": ["workload", "show", "llama3.1-8b", "--phase", "encode"],
    "workload-show-kv-zero": ["workload", "show", "smolvlm-256m", "--kv-len", "0"],
    "campaign-bad-seeds": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                           "--out", "OUT/c", "--seeds", "1,x"],
    "campaign-unknown-agent": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                               "--out", "OUT/c", "--agents", "ga,oracle"],
    "campaign-unknown-mode": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                              "--out", "OUT/c", "--modes", "eco"],
    "campaign-unknown-node": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm,1nm",
                              "--out", "OUT/c", "--agents", "random", "--budget", "4"],
    "campaign-unknown-workload": ["campaign", "--workloads", "gpt-7", "--nodes", "28nm",
                                  "--out", "OUT/c", "--agents", "random", "--budget", "4"],
    "campaign-empty-list": ["campaign", "--workloads", ",", "--nodes", "28nm", "--out", "OUT/c"],
    "campaign-budget-zero": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                             "--out", "OUT/c", "--budget", "0"],
    "campaign-jobs-zero": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                           "--out", "OUT/c", "--jobs", "0", "--agents", "random", "--budget", "4"],
    "campaign-out-is-file": ["campaign", "--workloads", "smolvlm-256m", "--nodes", "28nm",
                             "--out", "OUT/design.json", "--agents", "random", "--budget", "4"],
    "unknown-command": ["synthesize", "--design", GOOD],
}


@pytest.mark.parametrize("case", list(ARG_CASES))
def test_cli_arguments(case, outdir, tmp_path):
    bad_run = tmp_path / "badrun"
    bad_run.mkdir()
    (bad_run / "design.json").write_text('{"schema_version": 1, "name": ')
    bad_ppa = tmp_path / "badppa"
    bad_ppa.mkdir()
    (bad_ppa / "design.json").write_text(Path(GOOD).read_text())
    (bad_ppa / "ppa.json").write_text("[not json")
    if case == "flow-other-settings":      # a finished flow of other settings lives in OUT
        (outdir / "flow.json").write_text(json.dumps({
            "schema_version": 1, "explore_identity": {"workload": "smolvlm-256m", "budget": 2000},
            "stages": {}}))
    subst = {"OUT": str(outdir), "BADRUN": str(bad_run), "BADPPA": str(bad_ppa)}
    args = []
    for a in ARG_CASES[case]:
        head, sep, rest = a.partition("/")
        args.append(subst.get(head, head) + sep + rest if head in subst else a)
    before = snapshot(outdir)
    assert_one_line_error(run_cli(args, tmp_path), args)
    assert_untouched(outdir, before)


@pytest.mark.parametrize("case", ["evaluate-unknown-node", "flow-out-is-file", "report-bad-ppa",
                                  "campaign-unknown-workload", "unknown-command"])
def test_real_entry_point(case, outdir, tmp_path):
    """The same cases through ``python -m explorer`` in a fresh interpreter."""
    bad_ppa = tmp_path / "badppa"
    bad_ppa.mkdir()
    (bad_ppa / "design.json").write_text(Path(GOOD).read_text())
    (bad_ppa / "ppa.json").write_text("[not json")
    subst = {"OUT": str(outdir), "BADPPA": str(bad_ppa)}
    args = [subst[a.partition("/")[0]] + a.partition("/")[1] + a.partition("/")[2]
            if a.partition("/")[0] in subst else a for a in ARG_CASES[case]]
    before = snapshot(outdir)
    assert_one_line_error(spawn_cli(args, tmp_path), args)
    assert_untouched(outdir, before)
