"""Option groups that several commands share, defined once (typer Annotated types), and the
functions that read them into domain values. Only typer and the light domain modules are imported
here; parsing a flag's text goes through scalesim.units, the one parser per kind of quantity."""
import inspect
from typing import Annotated, List, Optional

import typer

# --- generic ---------------------------------------------------------------------------------------
Json = Annotated[bool, typer.Option("--json", help="print JSON instead of text")]
ModelFile = Annotated[str, typer.Option("--model", "-m", metavar="FILE", help="model JSON written by `scalesim fit`")]
OptModelFile = Annotated[Optional[str], typer.Option("--model", "-m", metavar="FILE",
                                                     help="model JSON written by `scalesim fit`")]

# --- placement: where the ranks of train / measure run ---------------------------------------------
P_PLACE = "placement (a node is a host; ranks per node are devices)"
Nodes = Annotated[Optional[int], typer.Option(
    "--nodes", metavar="N", rich_help_panel=P_PLACE,
    help="nodes (hosts) to run on; default: the hosts in --hosts, else 1 (without --hosts every rank "
         "runs on this one node)")]
Hosts = Annotated[Optional[str], typer.Option(
    "--hosts", metavar="H1:S1,H2:S2", rich_help_panel=P_PLACE,
    help="horovodrun -H host list (same Python path on every host, password-less ssh)")]
ThreadsPerRank = Annotated[str, typer.Option(
    "--threads-per-rank", metavar="N|auto", rich_help_panel=P_PLACE,
    help="TensorFlow intra-op threads per rank; auto = cores // ranks on the host")]

# --- network: --arch of train / measure (scalesim.train.models) -----------------------------------
ARCH_HELP = ("network: resnet8 | resnet20 | resnet32 | resnet56 | resnet50, keras:<keras.applications name> "
             "(e.g. keras:MobileNet,alpha=0.25), or module:function returning a Keras model (logits)")


def parse_shape(text: str, flag: str) -> tuple:
    """'32,32,3' -> (32, 32, 3); anything else is a one-line UsageError."""
    from ..errors import UsageError

    try:
        shape = tuple(int(t) for t in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise UsageError(f"{flag} must be H,W,C with positive sizes (got {text!r})")
    return shape


# --- plan: target, search space, learning rate (predict and simulate) -----------------------------
P_TARGET, P_SPACE, P_LR = "target", "search space", "learning rate (Goyal et al. 2017)"
TargetTime = Annotated[str, typer.Option("--target-time", metavar="DURATION", rich_help_panel=P_TARGET,
                                         help="time budget, e.g. 45m, 1h30m, 3600s, 2h")]
OptTargetTime = Annotated[Optional[str], typer.Option("--target-time", metavar="DURATION",
                                                      rich_help_panel=P_TARGET,
                                                      help="time budget, e.g. 45m, 1h30m, 3600s, 2h")]
TargetSteps = Annotated[Optional[float], typer.Option(
    "--target-steps", metavar="S", rich_help_panel=P_TARGET,
    help="train for S optimizer steps at the reference global batch (--ref-batch)")]
TargetEpochs = Annotated[Optional[float], typer.Option(
    "--target-epochs", metavar="E", rich_help_panel=P_TARGET,
    help="train for E epochs at every global batch, a fixed budget (needs --dataset-size unless the model "
         "records it); batches above the noise scale are marked 'accuracy at risk'")]
TargetMetric = Annotated[Optional[float], typer.Option(
    "--target-metric", metavar="VALUE", rich_help_panel=P_TARGET,
    help="train until the training curves' metric reaches VALUE (the value the model was fitted for, "
         "`fit --target`): steps at each batch from the fitted S(B) = S_min (1 + B_noise/B)")]
DatasetSize = Annotated[Optional[str], typer.Option("--dataset-size", metavar="N", rich_help_panel=P_TARGET,
                                                    help="samples per epoch, e.g. 1281167 or 1.28M")]
SpaceNodes = Annotated[Optional[str], typer.Option("--nodes", metavar="LIST", rich_help_panel=P_SPACE,
                                                   help="node (host) counts to consider, e.g. 1,2,4 or 1-64")]
MaxNodes = Annotated[Optional[int], typer.Option("--max-nodes", metavar="N", rich_help_panel=P_SPACE,
                                                 help="consider 1..N nodes (default 64)")]
DevicesPerNode = Annotated[Optional[str], typer.Option(
    "--devices-per-node", metavar="LIST", rich_help_panel=P_SPACE,
    help="devices (ranks) per node, e.g. 8 or 1,2,4,8 (default: the model's)")]
GlobalBatch = Annotated[Optional[str], typer.Option("--global-batch", metavar="LIST", rich_help_panel=P_SPACE,
                                                    help="global batch sizes to consider, e.g. 256,8192")]
LocalBatch = Annotated[Optional[str], typer.Option(
    "--local-batch", metavar="LIST", rich_help_panel=P_SPACE,
    help="fixed samples per device per step instead (weak scaling: B = devices x b)")]
MinGlobalBatch = Annotated[int, typer.Option("--min-global-batch", metavar="B", rich_help_panel=P_SPACE)]
MaxGlobalBatch = Annotated[Optional[int], typer.Option(
    "--max-global-batch", metavar="B", rich_help_panel=P_SPACE,
    help="default 65536 with a noise-scale fit, else 8192")]
BatchSizes = Annotated[int, typer.Option("--batch-sizes", metavar="K", rich_help_panel=P_SPACE,
                                         help="number of global batches between min and max, log-spaced")]
MaxLocalBatch = Annotated[Optional[int], typer.Option(
    "--max-local-batch", metavar="b", rich_help_panel=P_SPACE,
    help="largest micro-batch that fits in device memory; larger per-device batches use gradient accumulation")]
RefLR = Annotated[Optional[float], typer.Option("--ref-lr", metavar="ETA", rich_help_panel=P_LR,
                                                help="reference learning rate (default: the model's or 0.1)")]
RefBatch = Annotated[Optional[int], typer.Option("--ref-batch", metavar="B", rich_help_panel=P_LR,
                                                 help="reference global batch (default: the model's or 256)")]
WarmupEpochs = Annotated[Optional[float], typer.Option("--warmup-epochs", metavar="K", rich_help_panel=P_LR,
                                                       help="linear warmup epochs (default: the model's or 5)")]
FrontierRows = Annotated[int, typer.Option("--frontier-rows", metavar="N", min=1, max=1000,
                                           help="rows of the frontier table")]


def epoch_list(text: Optional[str], flag: str = "--decay-epochs") -> tuple:
    """'2,4,5.33' -> (2.0, 4.0, 5.33); empty -> (); anything else is a one-line UsageError."""
    from ..errors import UsageError

    try:
        return tuple(float(t) for t in text.split(",") if t.strip()) if text else ()
    except ValueError:
        raise UsageError(f"{flag}: not a comma-separated list of epochs: {text!r}") from None


def int_list(text: Optional[str], flag: str) -> Optional[List[int]]:
    from ..units import parse_int_list

    return parse_int_list(text, flag) if text else None


# The target / space / LR options, once for the three commands that share them (typer has no option
# group): (parameter, annotation, default), in --help order. `plan_options` appends them to a command's
# signature; the command takes them as **plan_args and reads them with `plan_specs`.
PLAN_OPTIONS = (
    ("target_time", OptTargetTime, None), ("target_steps", TargetSteps, None),
    ("target_epochs", TargetEpochs, None), ("target_metric", TargetMetric, None),
    ("dataset_size", DatasetSize, None), ("nodes", SpaceNodes, None), ("max_nodes", MaxNodes, None),
    ("devices_per_node", DevicesPerNode, None), ("global_batch", GlobalBatch, None),
    ("local_batch", LocalBatch, None), ("min_global_batch", MinGlobalBatch, 16),
    ("max_global_batch", MaxGlobalBatch, None), ("batch_sizes", BatchSizes, 64),
    ("max_local_batch", MaxLocalBatch, None), ("ref_lr", RefLR, None), ("ref_batch", RefBatch, None),
    ("warmup_epochs", WarmupEpochs, None),
)


def plan_options(time_required: bool = False):
    """Decorator: replace the command's **plan_args with the PLAN_OPTIONS parameters (keyword-only, after
    its own; --help groups them in their panels, so the listing is as if written out)."""
    def attach(fn):
        sig = inspect.signature(fn)
        own = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        plan = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=ann, default=default)
                for name, ann, default in PLAN_OPTIONS]
        if time_required:  # predict: a budget is the question itself
            plan[0] = inspect.Parameter("target_time", inspect.Parameter.KEYWORD_ONLY, annotation=TargetTime)
        fn.__signature__ = sig.replace(parameters=own + plan)
        return fn
    return attach


def plan_specs(plan: dict):
    """A plan_options command's **plan_args -> (target time in s or None, TargetSpec, SpaceSpec, LRSpec)."""
    from ..plan.spec import LRSpec, SpaceSpec, TargetSpec
    from ..units import parse_count

    p = plan
    size = parse_count(p["dataset_size"], "--dataset-size") if p["dataset_size"] else None
    target = TargetSpec(p["target_steps"], p["target_epochs"], size, p["target_metric"])
    space = SpaceSpec(int_list(p["nodes"], "--nodes"), p["max_nodes"],
                      int_list(p["devices_per_node"], "--devices-per-node"),
                      int_list(p["global_batch"], "--global-batch"), int_list(p["local_batch"], "--local-batch"),
                      p["min_global_batch"], p["max_global_batch"], p["batch_sizes"], p["max_local_batch"])
    return (duration(p["target_time"], "--target-time"), target, space,
            LRSpec(p["ref_lr"], p["ref_batch"], p["warmup_epochs"]))


def duration(text: Optional[str], flag: str) -> Optional[float]:
    from ..units import positive_duration

    return positive_duration(text, flag) if text is not None else None


def emit(plan: dict, as_json: bool, before: str = "") -> None:
    from ..plan.text import emit as _emit

    if before and not as_json:
        print(before)
    _emit(plan, as_json)
