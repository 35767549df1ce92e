"""Damaged files: a run directory corrupted in each way of badinput.RUN_CORRUPTIONS, given to fit,
validate and report; a model file corrupted in each way of badinput.MODEL_CORRUPTIONS, given to
validate, predict, simulate and report. Each must be refused (exit 2, one line naming the file, no
traceback), never accepted silently, and the damaged input must stay as it was."""
import pytest

from badinput import MODEL_CORRUPTIONS, RUN_CORRUPTIONS, Inputs, assert_rejected


@pytest.fixture(scope="session")
def good(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("bad-files"))


FIT = ["--bootstrap", "0", "--starts", "1"]
RUN_COMMANDS = {
    "fit": lambda run, good, tmp: ["fit", run, "--out", tmp / "m.json", *FIT],
    "validate": lambda run, good, tmp: ["validate", run, "--model", good.model],
    "report": lambda run, good, tmp: ["report", run, "--out", tmp / "r.html"],
}


@pytest.mark.parametrize("command", list(RUN_COMMANDS))
@pytest.mark.parametrize("damage", list(RUN_CORRUPTIONS))
def test_corrupted_run_directory_is_refused(good, tmp_path, damage, command):
    run = good.copy_run(tmp_path / "run")
    RUN_CORRUPTIONS[damage](run)
    line = assert_rejected(RUN_COMMANDS[command](run, good, tmp_path), [run, good.model])
    assert str(run) in line or "run" in line, line


MODEL_COMMANDS = {
    "validate": lambda m, good: ["validate", good.run, "--model", m],
    "predict": lambda m, good: ["predict", "--model", m, "--target-time", "1h", "--target-steps", "1000"],
    "simulate": lambda m, good: ["simulate", "--model", m, "--target-time", "1h", "--target-steps", "1000"],
    "report": lambda m, good: ["report", good.run, "--model", m, "--out", m.parent / "r.html"],
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
@pytest.mark.parametrize("damage", list(MODEL_CORRUPTIONS))
def test_corrupted_model_file_is_refused(good, tmp_path, damage, command):
    bad = tmp_path / "model.json"
    MODEL_CORRUPTIONS[damage](good.model, bad)
    line = assert_rejected(MODEL_COMMANDS[command](bad, good), [bad, good.run])
    assert "model.json" in line, line
