"""The local engine's trial process: `python -m scalesim.sweep.local_worker` reads pickled
TrialSpecs from stdin and writes pickled results to stdout until stdin closes. The protocol keeps
the original stdout; everything the trial prints goes to stderr."""
from __future__ import annotations

import os
import pickle
import sys


def main() -> int:
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)                      # TensorFlow and print() must not corrupt the protocol
    sys.stdout = sys.stderr
    proto_in = sys.stdin.buffer
    from .trial import run_in_process

    while True:
        try:
            spec = pickle.load(proto_in)
        except EOFError:
            return 0
        pickle.dump(run_in_process(spec), proto_out)
        proto_out.flush()


if __name__ == "__main__":
    sys.exit(main())
