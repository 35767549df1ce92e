"""One Horovod rank of linkbench.py: scalesim's allreduce microbenchmark, rows printed by rank 0."""
import json
import sys

import horovod.tensorflow as hvd

from scalesim.measure import allreduce_bench

hvd.init()
sizes = [int(s) for s in sys.argv[1].split(",")]  # bytes
rows = allreduce_bench.run(sizes, budget_s=2.0, min_iters=3, max_iters=20)
if hvd.rank() == 0:
    print("ROWS " + json.dumps({"size": hvd.size(), "cross_size": hvd.cross_size(), "rows": rows}), flush=True)
