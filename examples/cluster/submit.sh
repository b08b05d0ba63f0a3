#!/bin/bash
# Submit task.py as a SLURM array job: one task per line of params.txt (or of $PARAMS).
#
#     export RUNNER_CACHE_DIR=/shared/$USER/runner-cache   # storage every node sees
#     export RUNNER_LOCK=soft                              # if it is NFS, Lustre or GPFS
#     ./submit.sh [--no-prebuild] [SBATCH OPTIONS...]      # e.g. --partition=short --wait
#
# Pattern 1, the default: prebuild. `runner sync` builds the environment once, here on the
# login node, before anything is queued. Every task then finds it published and starts at
# once, and a broken dependency fails here, once, instead of in every task.
#
# Pattern 2, --no-prebuild: every task races on the cold cache. The first task to take the
# build lock builds; the others wait for it (silently, as job.sh passes -q) and then run in
# the environment it published. Nothing is ever built twice, but the waiting tasks hold
# their allocations while they wait. Use it when the login node cannot build for the nodes
# (no network there, or a different Python).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export RUNNER_CACHE_DIR=${RUNNER_CACHE_DIR:-/shared/$USER/runner-cache}
prebuild=1
if [ "${1:-}" = --no-prebuild ]; then
    prebuild=0
    shift
fi
PARAMS=$(realpath "${PARAMS:-$here/params.txt}")
export PARAMS
tasks=$(grep -c . "$PARAMS")
cd "$here"
mkdir -p logs
if [ "$prebuild" = 1 ]; then
    runner sync -q task.py
fi
exec sbatch --array="0-$((tasks - 1))" "$@" job.sh
