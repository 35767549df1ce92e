"""Bad command-line input to every command: exit 2, one line on stderr, no traceback, and every
input byte-identical afterwards (tests/badinput.py). In-process, so hundreds of cases stay fast;
no case reaches Horovod or TensorFlow (each is refused before a launch)."""
import numpy as np
import pytest

from badinput import Inputs, assert_rejected


@pytest.fixture(scope="session")
def good(tmp_path_factory):
    return Inputs(tmp_path_factory.mktemp("bad-input"))


FIT = ["--bootstrap", "0", "--starts", "1"]
NAN, INF = "nan", "inf"

# (id, argv with {run} {trace} {model} {trace_model} {validation} {prediction} {file} {tmp} {npz_*}, expected text)
CASES = [
    # --- measure: numbers and placements (all refused before anything launches) ------------------
    ("measure-timeout-nan", ["measure", "--timeout", NAN, "--out", "{tmp}/m"], "timeout"),
    ("measure-timeout-inf", ["measure", "--timeout", INF, "--out", "{tmp}/m"], "timeout"),
    ("measure-timeout-zero", ["measure", "--timeout", "0", "--out", "{tmp}/m"], "timeout"),
    ("measure-timeout-negative", ["measure", "--timeout", "-5", "--out", "{tmp}/m"], "timeout"),
    ("measure-lr-nan", ["measure", "--lr", NAN, "--out", "{tmp}/m"], "lr"),
    ("measure-lr-inf", ["measure", "--lr", "-inf", "--out", "{tmp}/m"], "lr"),
    ("measure-lr-zero", ["measure", "--lr", "0", "--out", "{tmp}/m"], "lr"),
    ("measure-noise-beta-nan", ["measure", "--noise-beta", NAN, "--out", "{tmp}/m"], "noise-beta"),
    ("measure-noise-beta-one", ["measure", "--noise-beta", "1", "--out", "{tmp}/m"], "noise-beta"),
    ("measure-steps-zero", ["measure", "--steps", "0", "--out", "{tmp}/m"], "steps"),
    ("measure-block-zero", ["measure", "--block", "0", "--out", "{tmp}/m"], "block"),
    ("measure-warmup-negative", ["measure", "--warmup", "-1", "--out", "{tmp}/m"], "warmup"),
    ("measure-steps-text", ["measure", "--steps", "many", "--out", "{tmp}/m"], "steps"),
    ("measure-devices-zero", ["measure", "--devices-per-node", "0", "--out", "{tmp}/m"], None),
    ("measure-devices-huge", ["measure", "--devices-per-node", "100000", "--out", "{tmp}/m"], "ranks on this machine"),
    ("measure-devices-text", ["measure", "--devices-per-node", "x", "--out", "{tmp}/m"], None),
    ("measure-nodes-huge", ["measure", "--nodes", "100000", "--out", "{tmp}/m"], None),
    ("measure-nodes-zero", ["measure", "--nodes", "0", "--out", "{tmp}/m"], None),
    ("measure-local-batches-zero", ["measure", "--local-batches", "0", "--out", "{tmp}/m"], None),
    ("measure-local-batches-negative", ["measure", "--local-batches", "-8", "--out", "{tmp}/m"], None),
    ("measure-local-batches-text", ["measure", "--local-batches", "a,b", "--out", "{tmp}/m"], None),
    ("measure-local-batches-huge", ["measure", "--local-batches", "10000000000000000000000000", "--out", "{tmp}/m"], None),
    ("measure-width-zero", ["measure", "--width", "0", "--out", "{tmp}/m"], "width"),
    ("measure-arch-unknown", ["measure", "--arch", "resnet9000", "--out", "{tmp}/m"], "resnet9000"),
    ("measure-dataset-unknown", ["measure", "--dataset", "imagenet-22k", "--out", "{tmp}/m"], "dataset"),
    ("measure-data-missing", ["measure", "--dataset", "npz", "--data", "{tmp}/nope.npz", "--out", "{tmp}/m"], "no such"),
    ("measure-data-empty-npz", ["measure", "--dataset", "npz", "--data", "{npz_empty}", "--out", "{tmp}/m"], "npz"),
    ("measure-data-corrupt-npz", ["measure", "--dataset", "npz", "--data", "{npz_corrupt}", "--out", "{tmp}/m"], "npz"),
    ("measure-data-npz-missing-array", ["measure", "--dataset", "npz", "--data", "{npz_partial}", "--out", "{tmp}/m"], "x_test"),
    ("measure-hosts-bad", ["measure", "--hosts", "a b:2", "--out", "{tmp}/m"], "host"),
    ("measure-hosts-zero-slots", ["measure", "--hosts", "localhost:0", "--out", "{tmp}/m"], "slot"),
    ("measure-hosts-few-slots", ["measure", "--hosts", "localhost:1", "--devices-per-node", "4", "--out", "{tmp}/m"], "slots"),
    ("measure-hosts-unknown", ["measure", "--hosts", "no-such-host.invalid:2", "--devices-per-node", "2", "--out", "{tmp}/m"], "unknown host"),
    ("measure-threads-zero", ["measure", "--threads-per-rank", "0", "--out", "{tmp}/m"], "threads"),
    ("measure-threads-text", ["measure", "--threads-per-rank", "lots", "--out", "{tmp}/m"], "threads"),
    ("measure-ar-sizes-tiny", ["measure", "--ar-sizes", "1B", "--out", "{tmp}/m"], "size"),
    ("measure-ar-sizes-text", ["measure", "--ar-sizes", "big", "--out", "{tmp}/m"], None),
    ("measure-ar-sizes-nan", ["measure", "--ar-sizes", "nanMiB", "--out", "{tmp}/m"], None),
    ("measure-ar-factor-one", ["measure", "--ar-factor", "1", "--out", "{tmp}/m"], None),
    ("measure-ar-min-above-max", ["measure", "--ar-min", "64MiB", "--ar-max", "4KiB", "--out", "{tmp}/m"], None),
    ("measure-resume-missing", ["measure", "--resume", "{tmp}/no-such-run"], "no run directory"),
    ("measure-resume-not-a-run", ["measure", "--resume", "{file}"], None),
    ("measure-resume-train-run", ["measure", "--resume", "{trainrun}"], "not a measurement run"),
    ("measure-out-existing-run", ["measure", "--out", "{run}"], "already"),
    ("measure-out-is-file", ["measure", "--out", "{file}"], None),
    ("measure-out-under-file", ["measure", "--out", "{file}/run"], None),
    ("measure-unknown-option", ["measure", "--frobnicate"], None),
    # --- train ------------------------------------------------------------------------------------
    ("train-ref-lr-nan", ["train", "--ref-lr", NAN, "--out", "{tmp}/t"], "ref-lr"),
    ("train-ref-lr-inf", ["train", "--ref-lr", INF, "--out", "{tmp}/t"], "ref-lr"),
    ("train-ref-lr-zero", ["train", "--ref-lr", "0", "--out", "{tmp}/t"], "ref-lr"),
    ("train-ref-lr-negative", ["train", "--ref-lr", "-0.1", "--out", "{tmp}/t"], "ref-lr"),
    ("train-momentum-nan", ["train", "--momentum", NAN, "--out", "{tmp}/t"], "momentum"),
    ("train-momentum-one", ["train", "--momentum", "1", "--out", "{tmp}/t"], "momentum"),
    ("train-weight-decay-nan", ["train", "--weight-decay", NAN, "--out", "{tmp}/t"], "weight-decay"),
    ("train-weight-decay-negative", ["train", "--weight-decay", "-1e-4", "--out", "{tmp}/t"], "weight-decay"),
    ("train-warmup-nan", ["train", "--warmup-epochs", NAN, "--out", "{tmp}/t"], "warmup-epochs"),
    ("train-warmup-negative", ["train", "--warmup-epochs", "-1", "--out", "{tmp}/t"], "warmup-epochs"),
    ("train-decay-epochs-nan", ["train", "--decay-epochs", "30,nan", "--out", "{tmp}/t"], "decay-epochs"),
    ("train-decay-epochs-text", ["train", "--decay-epochs", "soon", "--out", "{tmp}/t"], None),
    ("train-decay-factor-nan", ["train", "--decay-factor", NAN, "--out", "{tmp}/t"], "decay-factor"),
    ("train-batch-zero", ["train", "--batch", "0", "--out", "{tmp}/t"], "batch"),
    ("train-batch-not-multiple", ["train", "--batch", "3", "--devices-per-node", "2", "--out", "{tmp}/t"], "batch"),
    ("train-batch-huge", ["train", "--batch", "10000000000000000000000000", "--out", "{tmp}/t"], None),
    ("train-epochs-zero", ["train", "--epochs", "0", "--out", "{tmp}/t"], "epochs"),
    ("train-devices-huge", ["train", "--devices-per-node", "100000", "--batch", "100000", "--out", "{tmp}/t"], "ranks on this machine"),
    ("train-devices-zero", ["train", "--devices-per-node", "0", "--out", "{tmp}/t"], None),
    ("train-max-steps-zero", ["train", "--max-steps", "0", "--out", "{tmp}/t"], "max-steps"),
    ("train-arch-unknown", ["train", "--arch", "transformer-xxl", "--out", "{tmp}/t"], None),
    ("train-dataset-unknown", ["train", "--dataset", "cifar-1000", "--out", "{tmp}/t"], "dataset"),
    ("train-npz-empty", ["train", "--dataset", "npz", "--data", "{npz_empty}", "--out", "{tmp}/t"], "npz"),
    ("train-npz-corrupt", ["train", "--dataset", "npz", "--data", "{npz_corrupt}", "--out", "{tmp}/t"], "npz"),
    ("train-npz-no-data", ["train", "--dataset", "npz", "--out", "{tmp}/t"], "--data"),
    ("train-synthetic-with-data", ["train", "--dataset", "synthetic", "--data", "{file}", "--out", "{tmp}/t"], None),
    ("train-synthetic-shape-bad", ["train", "--dataset", "synthetic", "--synthetic-shape", "32,x", "--out", "{tmp}/t"], "synthetic-shape"),
    ("train-synthetic-size-zero", ["train", "--dataset", "synthetic", "--synthetic-size", "0", "--out", "{tmp}/t"], None),
    ("train-num-classes-one", ["train", "--dataset", "synthetic", "--num-classes", "1", "--out", "{tmp}/t"], None),
    ("train-threads-zero", ["train", "--threads-per-rank", "0", "--out", "{tmp}/t"], "threads"),
    ("train-lr-rule-unknown", ["train", "--lr-rule", "cubic", "--out", "{tmp}/t"], None),
    ("train-out-existing-run", ["train", "--out", "{run}"], "already"),
    ("train-out-under-file", ["train", "--dataset", "synthetic", "--out", "{file}/run"], None),
    ("train-hosts-bad", ["train", "--hosts", "h1:x", "--out", "{tmp}/t"], "slot"),
    # --- fit --------------------------------------------------------------------------------------
    ("fit-no-source", ["fit", "--out", "{tmp}/m.json"], None),
    ("fit-missing-source", ["fit", "{tmp}/nope", "--out", "{tmp}/m.json", *FIT], "nope"),
    ("fit-dir-not-a-run", ["fit", "{tmp}", "--out", "{tmp}/m.json", *FIT], None),
    ("fit-out-is-manifest", ["fit", "{run}", "--out", "{run}/manifest.json", *FIT], "input"),
    ("fit-out-inside-run", ["fit", "{run}", "--out", "{run}/steps/h1-g1-b16.parquet", *FIT], "input"),
    ("fit-out-is-trace", ["fit", "{trace}", "--out", "{trace}", *FIT], "input"),
    ("fit-out-is-directory", ["fit", "{trace}", "--out", "{tmp}", *FIT], "directory"),
    ("fit-out-under-file", ["fit", "{trace}", "--out", "{file}/m.json", *FIT], None),
    ("fit-out-is-run-dir", ["fit", "{trace}", "--out", "{run}", *FIT], None),
    ("fit-bootstrap-negative", ["fit", "{trace}", "--out", "{tmp}/m.json", "--bootstrap", "-1"], None),
    ("fit-bootstrap-nan", ["fit", "{trace}", "--out", "{tmp}/m.json", "--bootstrap", NAN], None),
    ("fit-starts-zero", ["fit", "{trace}", "--out", "{tmp}/m.json", "--starts", "0"], None),
    ("fit-fix-nan", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "alpha_c=nan", *FIT], "alpha_c"),
    ("fit-fix-inf", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "bw_inter=inf", *FIT], "bw_inter"),
    ("fit-fix-negative", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "alpha_c=-1", *FIT], "alpha_c"),
    ("fit-fix-unknown", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "warp=9", *FIT], "warp"),
    ("fit-fix-no-value", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "alpha_c", *FIT], "alpha_c"),
    ("fit-fix-text", ["fit", "{trace}", "--out", "{tmp}/m.json", "--fix", "alpha_c=small", *FIT], "alpha_c"),
    ("fit-holdout-bad", ["fit", "{trace}", "--out", "{tmp}/m.json", "--holdout", "num_replicas>>4", *FIT], None),
    ("fit-holdout-unknown-column", ["fit", "{trace}", "--out", "{tmp}/m.json", "--holdout", "colour=='red'", *FIT], None),
    ("fit-holdout-everything", ["fit", "{trace}", "--out", "{tmp}/m.json", "--holdout", "num_replicas>0", *FIT], None),
    ("fit-algorithm-unknown", ["fit", "{trace}", "--out", "{tmp}/m.json", "--algorithm", "telepathy", *FIT], None),
    ("fit-target-nan", ["fit", "{trace}", "--out", "{tmp}/m.json", "--target", NAN, *FIT], None),
    ("fit-csv-empty", ["fit", "{csv_empty}", "--out", "{tmp}/m.json", *FIT], None),
    ("fit-csv-binary", ["fit", "{csv_binary}", "--out", "{tmp}/m.json", *FIT], None),
    ("fit-csv-header-only", ["fit", "{csv_header}", "--out", "{tmp}/m.json", *FIT], "no rows"),
    ("fit-csv-wrong-columns", ["fit", "{csv_wrong}", "--out", "{tmp}/m.json", *FIT], None),
    ("fit-csv-nan-step-time", ["fit", "{csv_nan}", "--out", "{tmp}/m.json", *FIT], "step_time"),
    ("fit-csv-negative-step-time", ["fit", "{csv_neg}", "--out", "{tmp}/m.json", *FIT], "step_time"),
    ("fit-csv-zero-replicas", ["fit", "{csv_zero_reps}", "--out", "{tmp}/m.json", *FIT], None),
    ("fit-csv-bad-placement", ["fit", "{csv_placement}", "--out", "{tmp}/m.json", *FIT], "placement"),
    ("fit-json-source", ["fit", "{model}", "--out", "{tmp}/m.json", *FIT], None),
    # --- validate ---------------------------------------------------------------------------------
    ("validate-out-is-model", ["validate", "{run}", "--model", "{model}", "--out", "{model}"], "input"),
    ("validate-out-is-trace", ["validate", "{trace}", "--model", "{trace_model}", "--out", "{trace}"], "input"),
    ("validate-out-is-manifest", ["validate", "{run}", "--model", "{model}", "--out", "{run}/manifest.json"], "input"),
    ("validate-out-is-directory", ["validate", "{run}", "--model", "{model}", "--out", "{tmp}"], "directory"),
    ("validate-out-under-file", ["validate", "{run}", "--model", "{model}", "--out", "{file}/v.csv"], None),
    ("validate-missing-model", ["validate", "{run}", "--model", "{tmp}/none.json"], "none.json"),
    ("validate-model-is-run", ["validate", "{run}", "--model", "{run}"], None),
    ("validate-model-is-csv", ["validate", "{run}", "--model", "{trace}"], None),
    ("validate-no-source", ["validate", "--model", "{model}"], None),
    ("validate-missing-source", ["validate", "{tmp}/gone", "--model", "{model}"], "gone"),
    ("validate-csv-binary", ["validate", "{csv_binary}", "--model", "{trace_model}"], None),
    # --- predict ----------------------------------------------------------------------------------
    ("predict-target-time-nan", ["predict", "-m", "{model}", "--target-time", "nan h"], None),
    ("predict-target-time-nan-unit", ["predict", "-m", "{model}", "--target-time", "nans"], None),
    ("predict-target-time-inf", ["predict", "-m", "{model}", "--target-time", "infh"], None),
    ("predict-target-time-no-unit", ["predict", "-m", "{model}", "--target-time", "1M"], None),
    ("predict-target-time-zero", ["predict", "-m", "{model}", "--target-time", "0s"], None),
    ("predict-target-time-negative", ["predict", "-m", "{model}", "--target-time", "-1h"], None),
    ("predict-target-steps-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", NAN], None),
    ("predict-target-steps-inf", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", INF], None),
    ("predict-target-steps-negative", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "-5"], None),
    ("predict-target-epochs-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-epochs", NAN,
                                   "--dataset-size", "50000"], None),
    ("predict-dataset-size-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-epochs", "3",
                                  "--dataset-size", NAN], None),
    ("predict-dataset-size-negative", ["predict", "-m", "{model}", "--target-time", "1h", "--target-epochs", "3",
                                       "--dataset-size", "-10"], None),
    ("predict-dataset-size-huge", ["predict", "-m", "{model}", "--target-time", "1h", "--target-epochs", "3",
                                   "--dataset-size", "1e40"], None),
    ("predict-global-batch-1e25", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                   "--global-batch", "10000000000000000000000000"], None),
    ("predict-global-batch-10^25", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                    "--global-batch", "10^25"], None),
    ("predict-global-batch-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                   "--global-batch", "0"], None),
    ("predict-global-batch-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                  "--global-batch", NAN], None),
    ("predict-local-batch-negative", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                      "--local-batch", "-4"], None),
    ("predict-nodes-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--nodes", "0"], None),
    ("predict-nodes-huge", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--nodes", "1-1000000000000"], None),
    ("predict-max-nodes-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                "--max-nodes", "0"], None),
    ("predict-devices-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                              "--devices-per-node", "0"], None),
    ("predict-min-above-max-batch", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                     "--min-global-batch", "1024", "--max-global-batch", "64"], None),
    ("predict-batch-sizes-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                  "--batch-sizes", "0"], None),
    ("predict-max-local-batch-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                      "--max-local-batch", "0"], None),
    ("predict-ref-lr-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--ref-lr", NAN], None),
    ("predict-ref-lr-inf", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--ref-lr", INF], None),
    ("predict-ref-lr-negative", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                 "--ref-lr", "-1"], None),
    ("predict-ref-batch-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                "--ref-batch", "0"], None),
    ("predict-warmup-nan", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--warmup-epochs", NAN], None),
    ("predict-cores-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                            "--cores-per-host", "0"], None),
    ("predict-frontier-rows-zero", ["predict", "-m", "{model}", "--target-time", "1h", "--target-steps", "100",
                                    "--frontier-rows", "0"], None),
    ("predict-model-missing", ["predict", "-m", "{tmp}/none.json", "--target-time", "1h"], "none.json"),
    ("predict-no-target", ["predict", "-m", "{model}"], None),
    # --- simulate ---------------------------------------------------------------------------------
    ("simulate-profile-unknown", ["simulate", "--profile", "cray-9000", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-gamma-nan", ["simulate", "-m", "{model}", "--gamma", NAN, "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-gamma-zero", ["simulate", "-m", "{model}", "--gamma", "0", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-b-noise-nan", ["simulate", "-m", "{model}", "--b-noise", NAN, "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-b-noise-negative", ["simulate", "-m", "{model}", "--b-noise", "-3", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-grad-bytes-nan", ["simulate", "-m", "{model}", "--grad-bytes", "nanMB", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-grad-bytes-negative", ["simulate", "-m", "{model}", "--grad-bytes", "-5MB", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-params-negative", ["simulate", "-m", "{model}", "--params", "-25M", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-bytes-per-param-nan", ["simulate", "-m", "{model}", "--params", "25M", "--bytes-per-param", NAN, "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-bytes-per-param-zero", ["simulate", "-m", "{model}", "--params", "25M", "--bytes-per-param", "0", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-intra-bw-zero", ["simulate", "-m", "{model}", "--intra-bw", "0GB/s", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-intra-bw-nan", ["simulate", "-m", "{model}", "--intra-bw", "nanGB/s", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-inter-bw-text", ["simulate", "-m", "{model}", "--inter-bw", "fast", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-inter-latency-negative", ["simulate", "-m", "{model}", "--inter-latency", "-20us", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-intra-latency-no-unit", ["simulate", "-m", "{model}", "--intra-latency", "5", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-fusion-negative", ["simulate", "-m", "{model}", "--fusion-bytes", "-1MiB", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-num-tensors-zero", ["simulate", "-m", "{model}", "--num-tensors", "0", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-device-speed-nan", ["simulate", "-m", "{model}", "--device-speed", NAN, "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-device-speed-zero", ["simulate", "-m", "{model}", "--device-speed", "0", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-baseline-garbage", ["simulate", "--baseline", "it was quick", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-algorithm-unknown", ["simulate", "-m", "{model}", "--algorithm", "telepathy", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-global-batch-1e25", ["simulate", "-m", "{model}", "--global-batch", "10000000000000000000000000", "--target-time", "1h", "--target-steps", "100"], None),
    ("simulate-model-missing", ["simulate", "-m", "{tmp}/none.json", "--target-time", "1h", "--target-steps", "100"], "none.json"),
    ("simulate-target-time-nan", ["simulate", "-m", "{model}", "--target-time", "nanh", "--target-steps", "100"], None),
    # --- report -----------------------------------------------------------------------------------
    ("report-out-is-manifest", ["report", "{run}", "--out", "{run}/manifest.json"], "input"),
    ("report-out-is-model", ["report", "{run}", "--model", "{model}", "--out", "{model}"], "input"),
    ("report-out-is-validation", ["report", "{run}", "--validation", "{validation}", "--out", "{validation}"], "input"),
    ("report-out-is-directory", ["report", "{run}", "--out", "{tmp}"], "directory"),
    ("report-out-under-file", ["report", "{run}", "--out", "{file}/r.html"], None),
    ("report-missing-run", ["report", "{tmp}/gone"], "gone"),
    ("report-not-a-run", ["report", "{file}"], None),
    ("report-model-missing", ["report", "{run}", "--model", "{tmp}/none.json", "--out", "{tmp}/r.html"], "none.json"),
    ("report-model-is-csv", ["report", "{run}", "--model", "{trace}", "--out", "{tmp}/r.html"], None),
    ("report-validation-binary", ["report", "{run}", "--validation", "{csv_binary}", "--out", "{tmp}/r.html"], None),
    ("report-validation-wrong-columns", ["report", "{run}", "--validation", "{csv_wrong}", "--out", "{tmp}/r.html"], None),
    ("report-prediction-binary", ["report", "{run}", "--prediction", "{csv_binary}", "--out", "{tmp}/r.html"], None),
    ("report-prediction-list", ["report", "{run}", "--prediction", "{json_list}", "--out", "{tmp}/r.html"], None),
    ("report-prediction-deep", ["report", "{run}", "--prediction", "{json_deep}", "--out", "{tmp}/r.html"], None),
    # --- doctor and the top level ------------------------------------------------------------------
    ("doctor-unknown-option", ["doctor", "--fix-everything"], None),
    ("unknown-command", ["teleport"], None),
    ("no-command", [], None),
]


def _extra_files(good, tmp):
    """Small bad inputs of each kind, made once per test in its tmp dir."""
    p = {}
    p["csv_empty"] = tmp / "empty.csv"
    p["csv_empty"].write_bytes(b"")
    p["csv_binary"] = tmp / "binary.csv"
    p["csv_binary"].write_bytes(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    p["csv_header"] = tmp / "header.csv"
    p["csv_header"].write_text("num_nodes,num_replicas,local_bsz,step_time\n")
    p["csv_wrong"] = tmp / "wrong.csv"
    p["csv_wrong"].write_text("a,b,c\n1,2,3\n")
    rows = good.trace.read_text().splitlines()
    head = rows[0].split(",")
    st = head.index("step_time")

    def _with(value, col=st):
        out = [rows[0]]
        for r in rows[1:]:
            f = r.split(",")
            f[col] = value
            out.append(",".join(f))
        return "\n".join(out) + "\n"

    p["csv_nan"] = tmp / "nan.csv"
    p["csv_nan"].write_text(_with("nan"))
    p["csv_neg"] = tmp / "neg.csv"
    p["csv_neg"].write_text(_with("-0.5"))
    p["csv_zero_reps"] = tmp / "zero.csv"
    p["csv_zero_reps"].write_text("num_nodes,num_replicas,local_bsz,step_time\n1,0,16,0.1\n1,1,16,0.1\n")
    p["csv_placement"] = tmp / "placement.csv"
    p["csv_placement"].write_text("placement,local_bsz,step_time\n10x,16,0.1\n")
    p["json_list"] = tmp / "list.json"
    p["json_list"].write_text("[1, 2]")
    p["json_deep"] = tmp / "deep.json"
    p["json_deep"].write_text("[" * 100000 + "]" * 100000)
    p["npz_empty"] = tmp / "empty.npz"
    p["npz_empty"].write_bytes(b"")
    p["npz_corrupt"] = tmp / "corrupt.npz"
    p["npz_corrupt"].write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    p["npz_partial"] = tmp / "partial.npz"
    np.savez(p["npz_partial"], x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4, int))
    trainrun = tmp / "trainrun"
    trainrun.mkdir()
    (trainrun / "manifest.json").write_text('{"schema": "scalesim.run/1", "kind": "train", "configs": []}')
    p["trainrun"] = trainrun
    return p


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_cli_input(good, tmp_path, case):
    _, argv, expect = case
    paths = {"run": good.run, "trace": good.trace, "model": good.model, "trace_model": good.trace_model,
             "validation": good.validation, "prediction": good.prediction, "file": good.file, "tmp": tmp_path,
             **_extra_files(good, tmp_path)}
    argv = [a.format(**paths) for a in argv]
    inputs = [good.root / "good", *[v for k, v in paths.items() if k not in ("tmp",)]]
    assert_rejected(argv, inputs, expect)
