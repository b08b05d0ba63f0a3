# /// script
# requires-python = ">=3.11"
# dependencies = ["numpy>=1.24"]
# ///
"""One task of a cluster array job: process the parameter set picked by the task index.

The index comes from SLURM_ARRAY_TASK_ID (PBS_ARRAYID and SGE_TASK_ID also work), or from
the first argument. Line N of params.txt holds the parameters of task N.
"""

import json
import os
import sys
from pathlib import Path

import numpy


def task_index() -> int:
    if len(sys.argv) > 1:
        return int(sys.argv[1])
    for name in ("SLURM_ARRAY_TASK_ID", "PBS_ARRAYID", "SGE_TASK_ID"):
        if os.environ.get(name):
            return int(os.environ[name])
    sys.exit("task.py: no task index (set SLURM_ARRAY_TASK_ID or pass one)")


def main() -> None:
    here = Path(__file__).resolve().parent
    params = Path(os.environ.get("PARAMS", here / "params.txt")).read_text().splitlines()
    index = task_index()
    a, b = (float(x) for x in params[index].split())
    result = {"task": index, "params": [a, b], "result": float(numpy.prod([a, b]))}
    outdir = Path(os.environ.get("OUT_DIR", "results"))
    outdir.mkdir(parents=True, exist_ok=True)
    tmp = outdir / f".task-{index}.json.tmp"
    tmp.write_text(json.dumps(result) + "\n")
    tmp.replace(outdir / f"task-{index}.json")


if __name__ == "__main__":
    main()
