from typing import Annotated, Optional

import typer

from . import options as o

P_DATA, P_MODEL, P_LR = "data", "network", "learning-rate recipe (Goyal et al. 2017)"
ARCHS = o.ARCH_HELP  # scalesim.train.models


def command(
    nodes: o.Nodes = None,
    devices_per_node: Annotated[int, typer.Option(
        "--devices-per-node", metavar="N", rich_help_panel=o.P_PLACE,
        help="Horovod ranks per node; ranks = nodes x devices per node")] = 1,
    hosts: o.Hosts = None,
    threads_per_rank: o.ThreadsPerRank = "auto",
    batch: Annotated[int, typer.Option("--batch", help="GLOBAL batch size (summed over all ranks; each rank "
                                                       "gets batch / ranks)")] = 128,
    epochs: Annotated[int, typer.Option("--epochs")] = 1,
    arch: Annotated[str, typer.Option("--arch", rich_help_panel=P_MODEL, help=ARCHS)] = "resnet20",
    width: Annotated[Optional[int], typer.Option(
        "--width", rich_help_panel=P_MODEL, help="first-stage filters (default 16 CIFAR ResNets, 64 ResNet-50)")] = None,
    zero_init_residual: Annotated[bool, typer.Option(
        "--zero-init-residual/--no-zero-init-residual", rich_help_panel=P_MODEL,
        help="start each residual branch's last BN gamma at 0")] = True,
    ghost_batch: Annotated[Optional[int], typer.Option(
        "--ghost-batch", metavar="G", rich_help_panel=P_MODEL,
        help="normalise BN over groups of G examples within each rank's batch")] = None,
    dataset: Annotated[str, typer.Option("--dataset", rich_help_panel=P_DATA,
                                         help="fashion-mnist | synthetic | npz | folder")] = "fashion-mnist",
    data: Annotated[Optional[str], typer.Option(
        "--data", metavar="PATH", rich_help_panel=P_DATA,
        help="dataset location (Fashion-MNIST dir, .npz file, or image folder)")] = None,
    train_subset: Annotated[Optional[int], typer.Option(
        "--train-subset", metavar="N", rich_help_panel=P_DATA, help="train on a fixed random subset of N examples")] = None,
    test_subset: Annotated[Optional[int], typer.Option("--test-subset", metavar="N", rich_help_panel=P_DATA)] = None,
    synthetic_shape: Annotated[str, typer.Option(
        "--synthetic-shape", metavar="H,W,C", rich_help_panel=P_DATA,
        help="image shape of --dataset synthetic (e.g. 224,224,3 with resnet50)")] = "28,28,1",
    synthetic_size: Annotated[int, typer.Option("--synthetic-size", metavar="N", rich_help_panel=P_DATA,
                                                help="training examples of --dataset synthetic")] = 8192,
    num_classes: Annotated[int, typer.Option("--num-classes", rich_help_panel=P_DATA,
                                             help="classes of --dataset synthetic")] = 10,
    eval_: Annotated[bool, typer.Option("--eval/--no-eval", help="evaluate on the test set")] = True,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", metavar="N", help="at most N steps per epoch")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    lr_rule: Annotated[str, typer.Option("--lr-rule", rich_help_panel=P_LR,
                                         help="linear (eta = ref_lr*B/ref_batch) | sqrt | none")] = "linear",
    ref_lr: Annotated[float, typer.Option("--ref-lr", rich_help_panel=P_LR)] = 0.1,
    ref_batch: Annotated[int, typer.Option("--ref-batch", rich_help_panel=P_LR)] = 256,
    warmup_epochs: Annotated[float, typer.Option("--warmup-epochs", rich_help_panel=P_LR)] = 5.0,
    decay_epochs: Annotated[Optional[str], typer.Option(
        "--decay-epochs", metavar="E1,E2", rich_help_panel=P_LR,
        help="epochs at which the LR is multiplied by --decay-factor")] = None,
    decay_factor: Annotated[float, typer.Option("--decay-factor", rich_help_panel=P_LR)] = 0.1,
    momentum: Annotated[float, typer.Option("--momentum", rich_help_panel=P_LR)] = 0.9,
    momentum_correction: Annotated[bool, typer.Option("--momentum-correction/--no-momentum-correction",
                                                      rich_help_panel=P_LR)] = True,
    weight_decay: Annotated[float, typer.Option("--weight-decay", rich_help_panel=P_LR)] = 1e-4,
    wd_on_bn_bias: Annotated[bool, typer.Option("--wd-on-bn-bias", rich_help_panel=P_LR,
                                                help="also decay BN gamma/beta and biases")] = False,
    out: Annotated[Optional[str], typer.Option(
        "--out", "-o", metavar="DIR", help="run directory (default data/runs/train-<arch>-<dataset>-n<ranks>-b<B>-<time>)")] = None,
    fp16_allreduce: Annotated[bool, typer.Option(
        "--fp16-allreduce", rich_help_panel=P_MODEL,
        help="send gradients as float16 in the allreduce (hvd.Compression.fp16): half the bytes")] = False,
    dump_weights: Annotated[Optional[str], typer.Option("--dump-weights", hidden=True)] = None,
):
    """Train a ResNet on real Horovod ranks with the Goyal recipe (--batch is GLOBAL).

    Without --hosts every rank runs on this one node: --nodes 1 --devices-per-node N."""
    from ..errors import UsageError
    from ..train.config import TrainConfig
    from ..train.launch import run

    n = nodes if nodes is not None else (len([h for h in hosts.split(",") if h.strip()]) if hosts else 1)
    if n < 1 or devices_per_node < 1:
        raise UsageError(f"--nodes and --devices-per-node must be at least 1 (got {n} and {devices_per_node})")
    if n > 1 and not hosts:
        raise UsageError(f"--nodes {n} needs --hosts; without it every rank runs on this node "
                         "(use --devices-per-node)")
    decay = o.epoch_list(decay_epochs)
    cfg = TrainConfig(
        model=arch, dataset=dataset, data=data, batch=batch, epochs=epochs, nodes=n * devices_per_node,
        train_subset=train_subset, synthetic_shape=synthetic_shape, synthetic_size=synthetic_size,
        num_classes=num_classes, test_subset=test_subset, eval=eval_, max_steps=max_steps,
        threads=threads_per_rank, seed=seed, width=width, zero_init_residual=zero_init_residual,
        ghost_batch=ghost_batch, lr_rule=lr_rule, ref_lr=ref_lr, ref_batch=ref_batch, warmup_epochs=warmup_epochs,
        decay_epochs=decay, decay_factor=decay_factor, momentum=momentum, momentum_correction=momentum_correction,
        weight_decay=weight_decay, wd_exclude_bn_bias=not wd_on_bn_bias, dump_weights=dump_weights,
        fp16_allreduce=fp16_allreduce)
    return run(cfg, hosts, out)
