# /// script
# requires-python = ">=3.11"
# dependencies = []
# ///
"""Summarize one file of numbers (one per line) into a JSON file: one task of a batch.

    runner run summarize.py INPUT OUTDIR

run_batch.sh runs this over many inputs in parallel; see the comments there.
"""

import json
import statistics
import sys
from pathlib import Path


def main() -> None:
    source, outdir = Path(sys.argv[1]), Path(sys.argv[2])
    values = [float(line) for line in source.read_text().split() if line]
    summary = {
        "input": source.name,
        "count": len(values),
        "mean": statistics.fmean(values) if values else None,
        "max": max(values, default=None),
    }
    target = outdir / (source.stem + ".json")
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary) + "\n")
    tmp.replace(target)  # a killed task never leaves a half-written result


if __name__ == "__main__":
    main()
