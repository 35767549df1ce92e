from . import options as o


def command(
    model: o.ModelFile,
    target_time: o.TargetTime,
    target_steps: o.TargetSteps = None,
    target_epochs: o.TargetEpochs = None,
    target_metric: o.TargetMetric = None,
    dataset_size: o.DatasetSize = None,
    nodes: o.SpaceNodes = None,
    max_nodes: o.MaxNodes = None,
    devices_per_node: o.DevicesPerNode = None,
    global_batch: o.GlobalBatch = None,
    local_batch: o.LocalBatch = None,
    min_global_batch: o.MinGlobalBatch = 16,
    max_global_batch: o.MaxGlobalBatch = None,
    batch_sizes: o.BatchSizes = 64,
    max_local_batch: o.MaxLocalBatch = None,
    cores_per_host: o.Annotated[o.Optional[float], o.typer.Option(
        "--cores-per-host", metavar="C", help="override the model's cores per host")] = None,
    ref_lr: o.RefLR = None,
    ref_batch: o.RefBatch = None,
    warmup_epochs: o.WarmupEpochs = None,
    frontier_rows: o.FrontierRows = 8,
    json: o.Json = False,
):
    """Recommend node count, devices per node and global batch for a time budget, by a fitted model."""
    from ..plan.predict import predict

    plan = predict(model, o.duration(target_time, "--target-time"),
                   target=o.target_spec(target_steps, target_epochs, dataset_size, target_metric),
                   space=o.space_spec(nodes, max_nodes, devices_per_node, global_batch, local_batch,
                                      min_global_batch, max_global_batch, batch_sizes, max_local_batch),
                   lr=o.lr_spec(ref_lr, ref_batch, warmup_epochs), cores_per_host=cores_per_host,
                   frontier_rows=frontier_rows)
    o.emit(plan, json)
    return 0
