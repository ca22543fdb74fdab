"""PostgreSQL 15 from the Debian package, as a cluster of the project's own."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from beanpay.config import Settings
from beanpay.deploy.devstack.process import StackError, read_pid, run, tool_version, wait_until
from beanpay.deploy.devstack.service import Paths, Status


def _bindir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    raise StackError("PostgreSQL server binaries not found: apt-get install -y postgresql")


SETTINGS_FILE = "beanpay.conf"
SETTINGS = """# written by `beanpay dev up` on every start: edits here are overwritten
listen_addresses = '127.0.0.1'
max_connections = 300
shared_buffers = 256MB
fsync = on
shared_preload_libraries = 'pg_stat_statements'  # statement timings, for profiling
log_min_messages = warning
log_checkpoints = on
log_autovacuum_min_duration = 1s
# A payment writes about 11 kB of WAL: at 200 payments/s the default 1 GB forced a checkpoint every
# few minutes, each followed by a burst of full-page images. Checkpoints further apart, images compressed.
max_wal_size = 4GB
checkpoint_timeout = 15min
wal_compression = lz4
# A database gets its first statistics at autovacuum's first visit, up to a naptime after creation;
# until then the engine's settlement statements plan as if the tables were empty, and a benchmark on
# a fresh database settled ever slower for its first minute (block-to-confirmed p50 0.33 -> 0.67 s,
# then 0.24 s from the first analyze on). Visits every 10 s: tests and benchmarks create databases.
autovacuum_naptime = 10s
"""


class Postgres:
    name = "postgres"

    def __init__(self, settings: Settings, extra_settings: str = "") -> None:
        self.settings = settings
        self.paths = Paths(settings, self.name)
        self.user = "postgres" if os.geteuid() == 0 else None
        self.extra_settings = extra_settings  # appended to SETTINGS (a drill's WAL archiving, for one)

    def install(self) -> None:
        _bindir()

    def _chown(self, path: Path) -> None:
        if self.user is not None:
            shutil.chown(path, self.user, self.user)

    def _initdb(self) -> None:
        data = self.paths.data
        if (data / "PG_VERSION").exists():
            return
        self.paths.make()
        for d in (data, self.paths.run):
            self._chown(d)
        data.chmod(0o700)
        pwfile = self.paths.run / "pwfile"
        pwfile.write_text(self.settings.pg_password or "")
        self._chown(pwfile)
        pwfile.chmod(0o600)
        try:
            run([str(_bindir() / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=peer",
                 "--auth-host=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"],
                user=self.user, log=self.paths.log)
        finally:
            pwfile.unlink(missing_ok=True)
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# beanpay local cluster\nunix_socket_directories = '{self.paths.run}'\n"
                       f"include_if_exists = '{SETTINGS_FILE}'\n")

    def _write_settings(self) -> None:
        """Written on every start, so a cluster an older checkout made gets today's settings too."""
        conf = self.paths.data / "postgresql.conf"
        if f"include_if_exists = '{SETTINGS_FILE}'" not in conf.read_text():
            with conf.open("a") as out:
                out.write(f"include_if_exists = '{SETTINGS_FILE}'\n")
        target = self.paths.data / SETTINGS_FILE
        target.write_text(SETTINGS + self.extra_settings)
        self._chown(target)

    def start(self) -> None:
        self._initdb()
        self.start_server()
        self._ensure_database()

    def start_server(self) -> None:
        """Start the server on the data folder as it is (a restored copy may still be recovering)."""
        self._write_settings()
        self.paths.log.touch()
        self._chown(self.paths.log)  # the server appends to it as its own user
        run([str(_bindir() / "pg_ctl"), "-D", str(self.paths.data), "-l", str(self.paths.log),
             "-o", f"-p {self.settings.pg_port}", "-w", "-t", "60", "start"], user=self.user)
        wait_until(self.healthy, timeout=30, what="postgres", log=self.paths.log)

    def psql(self, sql: str) -> str:
        cmd = ["psql", "-h", str(self.paths.run), "-p", str(self.settings.pg_port), "-U", "postgres",
               "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-tAc", sql]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise StackError(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()

    def _ensure_database(self) -> None:
        user, db = self.settings.pg_user, self.settings.pg_database
        password = (self.settings.pg_password or "").replace("'", "''")
        if not self.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
            self.psql(f"CREATE ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{password}'")
        else:
            self.psql(f"ALTER ROLE \"{user}\" LOGIN CREATEDB PASSWORD '{password}'")
        if not self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{db}'"):
            self.psql(f"CREATE DATABASE \"{db}\" OWNER \"{user}\"")

    @property
    def ports(self) -> tuple[int, ...]:
        return (self.settings.pg_port,)

    def stop(self) -> None:
        if self.pid() is None:
            return
        run([str(_bindir() / "pg_ctl"), "-D", str(self.paths.data), "-m", "fast", "-w", "stop"],
            user=self.user)

    def pid(self) -> int | None:
        return read_pid(self.paths.data / "postmaster.pid", "postgres")

    def healthy(self) -> bool:
        out = subprocess.run(
            [str(_bindir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.settings.pg_port), "-q"],
            check=False,
        )
        return out.returncode == 0

    def status(self) -> Status:
        pid = self.pid()
        return Status(self.name, f"127.0.0.1:{self.settings.pg_port}", pid,
                      tool_version([str(_bindir() / "postgres"), "--version"]).split()[2],
                      pid is not None and self.healthy())
