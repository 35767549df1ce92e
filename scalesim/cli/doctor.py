from typing import Annotated

import typer


def command(json: Annotated[bool, typer.Option("--json", help="print the checks as JSON")] = False):
    """Check TensorFlow, Keras, Horovod, cores and datasets; a fix for each gap."""
    from ..doctor import run

    return run(as_json=json)
