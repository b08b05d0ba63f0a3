"""A throwaway single-node SLURM cluster and simulated hosts, for the cluster tests and bench.

`Slurm` starts munged, slurmctld and slurmd with a configuration written into a temporary
directory (state, spool, logs, pid files and the munge socket all live there; the ports
are free ports on 127.0.0.1) and stops them by their own pids. `on_host` runs a command in
its own UTS namespace with its own hostname (`unshare -u`), as if on another machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tests.wheels import make_wheel

# A stand-in for the one function of numpy the cluster example uses.
FAKE_NUMPY = '''
"""Just enough of numpy for examples/cluster/task.py."""


def prod(values):
    result = 1.0
    for value in values:
        result *= value
    return result
'''

SLURM_COMMANDS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scancel", "sinfo")


def make_fake_numpy(directory: Path) -> Path:
    """A wheelhouse holding a tiny `numpy` 1.26 (the cluster example needs numpy>=1.24)."""
    make_wheel(directory, "numpy", "1.26.0", modules={"numpy": FAKE_NUMPY})
    return directory


def slurm_unavailable() -> str | None:
    """Why a real SLURM cluster cannot be started here, or None if it can."""
    missing = [name for name in SLURM_COMMANDS if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not found); "
            "apt-get install slurm-wlm munge"
        )
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root"
    return None


def unshare_unavailable() -> str | None:
    """Why hosts cannot be simulated with UTS namespaces here, or None if they can."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    if os.geteuid() != 0:
        return "unshare -u (a UTS namespace per simulated host) needs root"
    probe = subprocess.run(
        ["unshare", "-u", "hostname", "probe-host"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode != 0:
        return f"unshare -u does not work here: {probe.stderr.strip()}"
    return None


def on_host(hostname: str, argv: Sequence[str]) -> list[str]:
    """An argument list running `argv` in a UTS namespace of its own named `hostname`.

    The namespace changes only the host name: the processes share this machine's
    filesystems, pids and kernel locks, as the nodes of a cluster share their storage.
    """
    return ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *argv]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until(what: str, check: Callable[[], bool], timeout: float, logs: Path) -> None:
    """Poll `check` until it is true (the daemons offer no event to wait for)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            text = "\n".join(
                f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                for p in sorted(logs.glob("*"))
            )
            raise TimeoutError(f"{what} not ready after {timeout:.0f}s\n{text}")
        time.sleep(0.1)


class Slurm:
    """A single-node SLURM cluster under `root`; use as a context manager.

    Client commands (`sbatch`, `squeue`, ...) find it through `env` (SLURM_CONF).
    """

    def __init__(self, root: Path, *, cpus: int = 48):
        self.root = root
        self.cpus = cpus
        self.node = "node1"
        self.conf = root / "slurm.conf"
        self.logs = root / "log"
        self.munge_socket = root / "munge" / "munge.socket"
        self.pid_files = {
            "munged": root / "munge" / "munged.pid",
            "slurmctld": root / "slurmctld.pid",
            "slurmd": root / "slurmd.pid",
        }
        self.daemons: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        # munged refuses a socket nobody else can reach; the key stays private.
        (self.root / "munge").chmod(0o755)
        host = socket.gethostname().split(".")[0]
        lines = [
            "ClusterName=runnertest",
            f"SlurmctldHost={host}(127.0.0.1)",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={self.root / 'state'}",
            f"SlurmdSpoolDir={self.root / 'spool'}",
            f"SlurmctldPidFile={self.pid_files['slurmctld']}",
            f"SlurmdPidFile={self.pid_files['slurmd']}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "SwitchType=switch/none",
            "MpiDefault=none",
            "MailProg=/bin/true",
            "SchedulerType=sched/builtin",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU",
            # More CPUs than the machine has, so a whole array starts at once as it would
            # on a real cluster; slurmd takes the configured count instead of the hardware's.
            "SlurmdParameters=config_overrides",
            "ReturnToService=2",
            f"NodeName={self.node} NodeAddr=127.0.0.1 NodeHostname={host} "
            f"CPUs={self.cpus} State=UNKNOWN",
            f"PartitionName=batch Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _spawn(self, name: str, argv: list[str]) -> None:
        with open(self.logs / f"{name}.out", "wb") as log:  # the daemon keeps its own copy
            self.daemons[name] = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, **self.env)
            )

    def start(self) -> None:
        self._write_config()
        munge = self.root / "munge"
        key = munge / "munge.key"
        subprocess.run(
            ["mungekey", "--create", f"--keyfile={key}"],
            capture_output=True,
            timeout=30,
            check=True,
        )
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={key}",
                f"--pid-file={self.pid_files['munged']}",
                f"--log-file={self.logs / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        _wait_until("munged", self.munge_socket.exists, 30, self.logs)
        conf = str(self.conf)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", conf])
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", conf])
        _wait_until("the compute node", self.node_idle, 60, self.logs)

    def node_idle(self) -> bool:
        for name, proc in self.daemons.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}: see {self.logs}")
        state = subprocess.run(
            ["sinfo", "--noheader", "--nodes", self.node, "--format", "%t"],
            env=dict(os.environ, **self.env),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return state.stdout.strip() == "idle"

    def daemon_pids(self) -> dict[str, int]:
        """Each daemon's pid as it wrote it in its pid file."""
        return {name: int(path.read_text().split()[0]) for name, path in self.pid_files.items()}

    def stop(self) -> None:
        """Stop the daemons by their own pids (slurmd first, munged last) and reap them.

        Jobs still queued or running on this cluster (after a failure) are cancelled first,
        so no task outlives the test.
        """
        ctld = self.daemons.get("slurmctld")
        if ctld is not None and ctld.poll() is None:
            subprocess.run(
                ["scancel", "--user", str(os.geteuid())],
                env=dict(os.environ, **self.env),
                capture_output=True,
                timeout=30,
                check=False,
            )
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.daemons.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)

    def __enter__(self) -> Slurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sbatch_env(cluster: Slurm, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment a user's shell would submit from (sbatch exports it to the tasks)."""
    return dict(os.environ, **cluster.env, **extra)
