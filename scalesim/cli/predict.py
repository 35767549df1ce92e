from . import options as o


@o.plan_options(time_required=True)
def command(
    model: o.ModelFile,
    cores_per_host: o.Annotated[o.Optional[float], o.typer.Option(
        "--cores-per-host", metavar="C", help="override the model's cores per host")] = None,
    frontier_rows: o.FrontierRows = 8,
    json: o.Json = False,
    **plan_args,
):
    """Recommend node count, devices per node and global batch for a time budget, by a fitted model."""
    from ..plan.predict import predict

    target_time, target, space, lr = o.plan_specs(plan_args)
    plan = predict(model, target_time, target=target, space=space, lr=lr, cores_per_host=cores_per_host,
                   frontier_rows=frontier_rows)
    o.emit(plan, json)
    return 0
