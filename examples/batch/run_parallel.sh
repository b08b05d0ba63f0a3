#!/bin/sh
# run_batch.sh with GNU parallel instead of xargs: prebuild once, then fan out.
#
#     ./run_parallel.sh INPUT_DIR OUT_DIR [JOBS]
#
# --halt now,fail=1 stops the batch at the first failed run; --joblog records every
# run's exit status and time. parallel can also spread the runs over several machines
# (--sshlogin) when they share the cache: see "Running on a cluster" in the README.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
inputs=${1:?usage: run_parallel.sh INPUT_DIR OUT_DIR [JOBS]}
outdir=${2:?usage: run_parallel.sh INPUT_DIR OUT_DIR [JOBS]}
jobs=${3:-8}
mkdir -p "$outdir"

runner sync "$here/summarize.py"

find "$inputs" -name '*.txt' -print0 |
    parallel -0 --jobs "$jobs" --halt now,fail=1 --joblog "$outdir/joblog" \
        runner run -q "$here/summarize.py" {} "$outdir"
