#!/bin/bash
#SBATCH --job-name=runner-array
#SBATCH --array=0-3
#SBATCH --time=00:10:00
#SBATCH --output=logs/task-%a.out
#
# One task of a SLURM array job: runs task.py with this task's index. Submit it with
# ./submit.sh, which sizes the array from params.txt and, by default, builds the
# environment once before anything is queued (see the comments there).
#
# Every node must see the cache: RUNNER_CACHE_DIR names a directory on shared storage
# (sbatch passes the submitting shell's variables to the tasks). On storage shared between
# machines (NFS, Lustre, GPFS) also set RUNNER_LOCK=soft.
set -euo pipefail
export RUNNER_CACHE_DIR=${RUNNER_CACHE_DIR:-/shared/$USER/runner-cache}
# SLURM runs a copy of this file from its spool directory: the submit directory is where
# task.py and params.txt are.
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")}"
exec runner run -q task.py "${SLURM_ARRAY_TASK_ID:?not running as an array task}"
