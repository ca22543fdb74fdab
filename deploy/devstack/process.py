"""Small helpers to run detached service processes with pid files, logs and health waits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class StackError(Exception):
    """A service could not be installed, started or stopped; the message says which and why."""


def run(cmd: Sequence[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
        user: str | None = None, log: Path | None = None) -> None:
    """Run a set-up command to completion; on failure raise with the tail of its output."""
    if user is not None and os.geteuid() == 0:
        cmd = ["runuser", "-u", user, "--", *cmd]
    result = subprocess.run(
        list(cmd), env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )
    if log is not None:
        with log.open("a") as f:
            f.write(f"$ {' '.join(cmd)}\n{result.stdout}{result.stderr}\n")
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise StackError(f"{' '.join(cmd[:3])}... exited {result.returncode}:\n  " + "\n  ".join(tail))


def go_install(module: str, binary: Path, log: Path) -> None:
    """`go install module@version` (the module proxy is what this machine reaches), its command cached as
    `binary`; only a complete build lands there."""
    if shutil.which("go") is None:
        raise StackError("go not found: install Go >= 1.25")
    build = binary.parent / f".build-{binary.name}"
    shutil.rmtree(build, ignore_errors=True)
    env = {**os.environ, "GOBIN": str(build), "GOFLAGS": "-mod=mod"}
    run(["go", "install", module], env=env, log=log)
    (built,) = build.iterdir()
    built.rename(binary)
    shutil.rmtree(build, ignore_errors=True)


def spawn(cmd: Sequence[str], *, log: Path, pidfile: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None, user: str | None = None) -> int:
    """Start a long-running process in its own session, output appended to `log`; as `user` when given
    (directly, not through runuser, which kills its child two seconds after passing on a SIGTERM)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True, user=user, group=user,
        )
    pidfile.write_text(str(proc.pid))
    return proc.pid


def read_pid(pidfile: Path, expect: str) -> int | None:
    """The pid in `pidfile` if that process is alive and its command line mentions `expect`."""
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, ValueError, IndexError):
        return None
    if expect not in cmdline:
        return None
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # a zombie is dead
        return None
    return pid


def stop_pid(pid: int, *, timeout: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL the process group."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not Path(f"/proc/{pid}").exists() or _is_zombie(pid):
                return
            time.sleep(0.1)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # a failing probe means "not yet"; the last reason is told at the end
            last = exc
        time.sleep(0.25)
    hint = f"\n  last error: {last!r}" if last is not None else ""
    if log is not None and log.exists():
        hint += "\n  last log lines:\n  " + "\n  ".join(log.read_text(errors="replace").splitlines()[-10:])
    raise StackError(f"{what} not healthy after {timeout:.0f}s{hint}")


def tool_version(cmd: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "?"
