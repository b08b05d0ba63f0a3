#!/bin/sh
# Run summarize.py over every *.txt file in INPUT_DIR, JOBS at a time, with no prebuild.
#
#     ./run_cold.sh INPUT_DIR OUT_DIR [JOBS]
#
# Every run starts on a possibly cold cache and they race: the first to take the
# environment's build lock builds it, the others wait for that build (silently with -q;
# without it each says which process it waits for) and then run in the environment it
# published. The environment is built once however many runs start together. Prefer
# run_batch.sh (prebuild, then fan out) when you can: a broken dependency then fails once,
# before the batch, instead of in every run.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
inputs=${1:?usage: run_cold.sh INPUT_DIR OUT_DIR [JOBS]}
outdir=${2:?usage: run_cold.sh INPUT_DIR OUT_DIR [JOBS]}
jobs=${3:-8}
mkdir -p "$outdir"

find "$inputs" -name '*.txt' -print0 |
    xargs -0 -P "$jobs" -I {} runner run -q "$here/summarize.py" {} "$outdir"
