#!/bin/sh
# Run summarize.py over every *.txt file in INPUT_DIR, JOBS at a time, results in OUT_DIR.
#
#     ./run_batch.sh INPUT_DIR OUT_DIR [JOBS]
#
# Step 1 builds the environment once (and prints where it is); step 2 fans out. Without
# the prebuild the first wave of parallel runs would all wait for the one build anyway,
# but a broken dependency now fails once, here, instead of once per input.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
inputs=${1:?usage: run_batch.sh INPUT_DIR OUT_DIR [JOBS]}
outdir=${2:?usage: run_batch.sh INPUT_DIR OUT_DIR [JOBS]}
jobs=${3:-8}
mkdir -p "$outdir"

runner sync "$here/summarize.py"

# Every run is now warm: runner execs the script in the prebuilt environment at once.
find "$inputs" -name '*.txt' -print0 |
    xargs -0 -P "$jobs" -I {} runner run -q "$here/summarize.py" {} "$outdir"
