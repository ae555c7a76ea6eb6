"""A private single-node SLURM cluster on the loopback interface, for tests.

Debian's packages (slurmctld, slurmd, slurm-client, munge; SLURM 22.05) run without systemd and
without an accounting database. Everything the daemons write (config, munge key and socket,
state, spool, logs, pid files) lives in one fresh directory, and clients find the cluster through
``SLURM_CONF``. One exception: inside a job, snakemake-executor-plugin-slurm-jobstep starts the
step's ``srun`` with every ``SLURM_*`` variable removed except the job's identity, so ``srun`` can
only find the configuration at the default path. The config is therefore also written to
``/etc/slurm/slurm.conf`` while the cluster runs, and whatever was there before is put back (or
the file removed) when it stops. Daemons run in the foreground, are stopped by their process ids,
and every wait is bounded. All addresses are 127.0.0.1 and the ports are free ones picked at start;
slurmd listens on 127.0.0.1 only, slurmctld (which SLURM 22.05 cannot bind to one address) on its
port of every interface, where only holders of this cluster's fresh munge key get an answer.

Requires root: slurmd runs jobs as the submitting user and munged runs as the ``munge`` user.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
BINARIES = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "munged")
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")  # where job steps' srun looks (see above)
APT_TIMEOUT = 420  # seconds for `apt-get update` + install; about a minute on CI runners


def missing_binaries() -> list[str]:
    extra = ["/usr/sbin", "/sbin"]
    path = os.pathsep.join([os.environ.get("PATH", ""), *extra])
    return [name for name in BINARIES if shutil.which(name, path=path) is None]


def cannot_run_reason() -> str | None:
    """Why this machine cannot run the daemons, or None when it can (possibly after install)."""
    if os.geteuid() != 0:
        return (
            "the single-node SLURM test needs root (to install slurmctld/slurmd/munge with "
            "apt-get and run slurmd, which starts jobs as the submitting user); run it as root, "
            "e.g. in CI"
        )
    if missing_binaries() and shutil.which("apt-get") is None:
        return (
            f"SLURM is not installed ({', '.join(missing_binaries())} missing) and there is no "
            f"apt-get to install {' '.join(PACKAGES)}"
        )
    return None


def install() -> None:
    """apt-get install the Debian packages unless their programs are already there."""
    if not missing_binaries():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another job may hold the dpkg lock (parallel test runs installing browsers): wait for it.
    lock = ["-o", "DPkg::Lock::Timeout=180"]
    deadline = time.monotonic() + APT_TIMEOUT
    for command in (
        ["apt-get", *lock, "update", "-q"],
        ["apt-get", *lock, "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        result = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=max(30, deadline - time.monotonic()),
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout[-3000:]}\n"
                f"{result.stderr[-3000:]}"
            )
    if missing_binaries():
        raise RuntimeError(f"installed {PACKAGES} but {missing_binaries()} are still missing")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _memory_mb() -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class LocalSlurm:
    """``with LocalSlurm() as cluster:`` brings a cluster up and always takes it down."""

    def __init__(self, cpus: int | None = None, memory_mb: int | None = None):
        self.cpus = cpus or os.cpu_count() or 1
        # slurmd drains a node that claims more memory than it has: offer most of it.
        self.memory_mb = memory_mb or int(_memory_mb() * 0.8)
        self.root = Path(tempfile.mkdtemp(prefix="embrm-slurm-", dir="/tmp"))
        # munged (user munge) must traverse it; nothing in it is world-writable.
        self.root.chmod(0o755)
        self.conf = self.root / "slurm.conf"
        self.munge_dir = self.root / "munge"
        self.socket = self.munge_dir / "munge.socket"
        self.processes: dict[str, subprocess.Popen] = {}
        self._logs: list = []
        self._system_conf_saved: bytes | None = None
        self._system_conf_written = False

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> LocalSlurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def env(self) -> dict[str, str]:
        """The environment in which SLURM clients (sbatch, squeue, …) talk to this cluster."""
        env = {**os.environ, "SLURM_CONF": str(self.conf)}
        env["PATH"] = os.pathsep.join([env.get("PATH", ""), "/usr/sbin", "/sbin"])
        return env

    def start(self, timeout: float = 90) -> None:
        self._start_munge()
        self._write_config()
        self._install_system_conf()
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), timeout, "slurmctld to answer")
        self._spawn("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait(self._node_idle, timeout, "the node to become idle")

    def stop(self, timeout: float = 20) -> None:
        """Cancel what still runs, then stop slurmd, slurmctld and munged by their pids."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--full", "--user", "root"],
                env=self.env,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
            try:
                self._wait(lambda: not self.queue(states="RUNNING,PENDING"), timeout, "jobs to end")
            except (TimeoutError, subprocess.SubprocessError):
                pass
        for name in ("slurmd", "slurmctld", "munged"):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)
        for handle in self._logs:
            handle.close()
        self._logs.clear()
        self._restore_system_conf()

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # --- queries -----------------------------------------------------------------------------
    def queue(self, states: str = "all") -> list[dict[str, str]]:
        """Jobs the controller knows (finished ones stay MinJobAge seconds): id, name, state,
        comment and command."""
        fields = ["id", "name", "state", "comment", "partition"]
        result = subprocess.run(
            ["squeue", "--noheader", f"--states={states}", "--format=%i|%j|%T|%k|%P"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return [
            dict(zip(fields, line.split("|", len(fields) - 1), strict=True))
            for line in result.stdout.splitlines()
            if line.strip()
        ]

    def job_details(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (TRES, command, exit code, …)."""
        result = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        details = {}
        for token in result.stdout.split():
            key, _, value = token.partition("=")
            details.setdefault(key, value)
        return details

    def logs(self) -> str:
        """The daemons' logs, for failure messages."""
        parts = []
        for path in sorted(self.root.rglob("*.log")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)

    # --- internals ---------------------------------------------------------------------------
    def _spawn(self, name: str, command: list[str], **kwargs) -> None:
        log_dir = self.root / "log"
        log_dir.mkdir(exist_ok=True)
        handle = open(log_dir / f"{name}.out.log", "w")  # closed in stop()
        self._logs.append(handle)
        self.processes[name] = subprocess.Popen(
            command,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def _start_munge(self) -> None:
        user = pwd.getpwnam("munge")
        group = grp.getgrnam("munge")
        self.munge_dir.mkdir()
        # Clients need to reach the socket in here; the key itself is readable by munge only.
        self.munge_dir.chmod(0o755)
        os.chown(self.munge_dir, user.pw_uid, group.gr_gid)
        key = self.munge_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chown(key, user.pw_uid, group.gr_gid)
        key.chmod(0o400)
        self._spawn(
            "munged",
            [
                shutil.which("munged", path=self.env["PATH"]),
                "--foreground",
                f"--socket={self.socket}",
                f"--key-file={key}",
                f"--pid-file={self.munge_dir / 'munged.pid'}",
                f"--log-file={self.munge_dir / 'munged.log'}",
                f"--seed-file={self.munge_dir / 'munged.seed'}",
            ],
            user=user.pw_uid,
            group=group.gr_gid,
            extra_groups=[],
        )
        self._wait(self.socket.exists, 30, "munged to open its socket")

    def _write_config(self) -> None:
        # The daemons run in the foreground and log to stderr, which _spawn keeps in log/.
        for name in ("state", "spool"):
            (self.root / name).mkdir(exist_ok=True)
        settings = {
            "ClusterName": "embrmtest",
            "SlurmctldHost": "localhost(127.0.0.1)",
            "SlurmctldPort": _free_port(),
            "SlurmdPort": _free_port(),
            # Listen on the configured addresses (127.0.0.1) instead of every interface.
            "CommunicationParameters": "NoInAddrAny",
            "SlurmUser": "root",
            "AuthType": "auth/munge",
            "AuthInfo": f"socket={self.socket}",
            "CredType": "cred/munge",
            "StateSaveLocation": self.root / "state",
            "SlurmdSpoolDir": self.root / "spool",
            "SlurmctldPidFile": self.root / "slurmctld.pid",
            "SlurmdPidFile": self.root / "slurmd.pid",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_Core_Memory",
            "SchedulerType": "sched/backfill",
            "MpiDefault": "none",
            "ReturnToService": 2,
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "JobCompType": "jobcomp/none",
            # Finished jobs stay visible to squeue (the status command) for ten minutes.
            "MinJobAge": 600,
            "SlurmctldTimeout": 30,
            "SlurmdTimeout": 30,
        }
        lines = [f"{key}={value}" for key, value in settings.items()]
        lines += [
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} "
            f"RealMemory={self.memory_mb} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")

    def _install_system_conf(self) -> None:
        if SYSTEM_CONF.exists():
            self._system_conf_saved = SYSTEM_CONF.read_bytes()
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        self._system_conf_written = True
        shutil.copyfile(self.conf, SYSTEM_CONF)

    def _restore_system_conf(self) -> None:
        if not self._system_conf_written:
            return
        if self._system_conf_saved is None:
            SYSTEM_CONF.unlink(missing_ok=True)
        else:
            SYSTEM_CONF.write_bytes(self._system_conf_saved)
        self._system_conf_written = False

    def _ok(self, command: list[str], expect: str) -> bool:
        try:
            result = subprocess.run(
                command, env=self.env, capture_output=True, text=True, timeout=10
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and expect in result.stdout

    def _node_idle(self) -> bool:
        try:
            result = subprocess.run(
                ["sinfo", "--noheader", "--Node", "--format=%T"],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return False
        return result.returncode == 0 and result.stdout.strip() == "idle"

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(
                        f"{name} exited ({process.returncode}) while waiting for {what}:\n"
                        f"{self.logs()}"
                    )
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.logs()}")
