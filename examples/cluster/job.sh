#!/bin/bash
#SBATCH --job-name=runner-array
#SBATCH --array=0-3
#SBATCH --time=00:10:00
#SBATCH --output=logs/task-%a.out
#
# A SLURM array job: every task runs task.py with its own index.
#
# Before submitting, build the environment once on the login node, into the cache on
# shared storage that every node sees:
#
#     export RUNNER_CACHE_DIR=/shared/$USER/runner-cache
#     runner sync task.py
#     sbatch job.sh
#
# The nodes then find the published environment and start at once; none of them builds
# or downloads anything. (If a node did need a build, the lock in the shared cache makes
# one node build while the others wait; without flock on the filesystem they may build
# twice, and every run is still correct.)
set -euo pipefail
export RUNNER_CACHE_DIR=${RUNNER_CACHE_DIR:-/shared/$USER/runner-cache}
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"
exec runner run -q task.py "${SLURM_ARRAY_TASK_ID:?not running as an array task}"
