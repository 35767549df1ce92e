"""Bad input to the real CLI: one line on stderr, exit code 2, no traceback."""
import subprocess
import sys

import pytest

CASES = {
    "zero nodes": ["train", "--nodes", "0"],
    "unknown arch": ["train", "--arch", "resnet7"],
    "missing data dir": ["train", "--dataset", "fashion-mnist", "--data", "/nonexistent/fmnist"],
    "missing npz": ["train", "--dataset", "npz", "--data", "/nonexistent/data.npz"],
    "batch not divisible": ["train", "--devices-per-node", "3", "--batch", "64"],
    "nodes without hosts": ["train", "--nodes", "2"],
    "bad hosts": ["train", "--devices-per-node", "2", "--hosts", "a:1,b:1"],
    "unknown option": ["train", "--threads", "2"],
    "bad lr rule": ["train", "--lr-rule", "cubic"],
}


@pytest.mark.parametrize("argv", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2(argv, tmp_path):
    r = subprocess.run([sys.executable, "-m", "scalesim.cli", *argv, "--out", str(tmp_path / "run")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scalesim train: error:"), r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "run").exists()


def test_missing_data_names_the_fix(tmp_path):
    r = subprocess.run([sys.executable, "-m", "scalesim.cli", "train", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 2 and "apt-get install dataset-fashion-mnist" in r.stderr


def test_doctor_parses_check_build():
    from scalesim.doctor import parse_check_build

    text = ("Horovod v0.28.1:\n\nAvailable Frameworks:\n    [X] TensorFlow\n    [ ] PyTorch\n\n"
            "Available Controllers:\n    [ ] MPI\n    [X] Gloo\n")
    assert parse_check_build(text) == {"frameworks": {"TensorFlow": True, "PyTorch": False},
                                       "controllers": {"MPI": False, "Gloo": True}}


def test_worker_argv_reproduces_the_config():
    from scalesim.train.config import TrainConfig, config_from_args, to_argv
    from scalesim.train.worker import worker_parser

    cfg = TrainConfig(model="resnet32", nodes=4, batch=512, decay_epochs=(30.0, 60.5), eval=False,
                      momentum_correction=False, wd_exclude_bn_bias=False, threads="3", train_subset=1000,
                      synthetic_shape="32,32,3", out="/tmp/x", progress="events")
    assert config_from_args(worker_parser().parse_args(to_argv(cfg))) == cfg
