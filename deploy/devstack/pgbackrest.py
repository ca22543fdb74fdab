"""pgBackRest (Debian) for a local cluster: continuous WAL archiving, base backups, point-in-time restores.

The repository is a folder here; in production it is object storage (repo1-type=s3 or gcs) or a backup
host, with the same stanza, commands and retention. Everything runs as the cluster's own user.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

from beanpay.deploy.devstack.postgres import Postgres
from beanpay.deploy.devstack.process import StackError, run

STANZA = "beanpay"


class PgBackRest:
    def __init__(self, cluster: Postgres, root: Path) -> None:
        self.cluster, self.root = cluster, root
        self.config = root / "pgbackrest.conf"

    @staticmethod
    def install() -> None:
        if shutil.which("pgbackrest") is None:
            raise StackError("pgbackrest not found: apt-get install -y pgbackrest")

    @property
    def archive_settings(self) -> str:
        """What the cluster's configuration needs for every WAL segment to reach the repository."""
        return ("\n# WAL archiving to pgBackRest (written by the drill)\nwal_level = replica\narchive_mode = on\n"
                f"archive_command = 'pgbackrest --config={self.config} --stanza={STANZA} archive-push %p'\n"
                "archive_timeout = 30s\n")

    def write_config(self) -> None:
        for d in ("repo", "log", "lock", "spool"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        paths = self.cluster.paths
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.root / 'repo'}\n"
            "repo1-retention-full=2\n"
            f"log-path={self.root / 'log'}\n"
            f"lock-path={self.root / 'lock'}\n"
            f"spool-path={self.root / 'spool'}\n"
            "log-level-console=warn\n"
            "log-level-file=info\n"
            "start-fast=y\n"  # a checkpoint at once rather than at the next scheduled one
            "compress-type=lz4\n"
            "process-max=2\n"
            f"\n[{STANZA}]\n"
            f"pg1-path={paths.data}\n"
            f"pg1-port={self.cluster.settings.pg_port}\n"
            f"pg1-socket-path={paths.run}\n"
            "pg1-user=postgres\n")
        for path in (self.root, *self.root.iterdir()):
            self.cluster._chown(path)

    def _run(self, *args: str) -> None:
        run(["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args], user=self.cluster.user,
            log=self.root / "log" / "drill.log")

    def create_stanza(self) -> None:
        self._run("stanza-create")
        self._run("check")  # archiving works end to end: a segment was pushed and found in the repository

    def backup(self, kind: str = "full") -> None:
        self._run(f"--type={kind}", "backup")

    def info(self) -> list[dict[str, object]]:
        cmd = ["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", "--output=json", "info"]
        if self.cluster.user is not None:
            cmd = ["runuser", "-u", self.cluster.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"pgbackrest info: {done.stderr.strip()}")
        return list(json.loads(done.stdout))

    def restore_to(self, target: Postgres, at: dt.datetime) -> None:
        """Restore the newest backup before `at` into `target`'s (new, empty) data folder and replay WAL up
        to `at`; the restored cluster is promoted when it gets there (a new timeline)."""
        data = target.paths.data
        shutil.rmtree(data, ignore_errors=True)
        target.paths.make()
        for d in (data, target.paths.run):
            target._chown(d)
        data.chmod(0o700)
        when = at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"  # the form pgBackRest reads
        self._run(f"--pg1-path={data}", "--type=time", f"--target={when}",
                  # a drill's copy must not archive into the original's repository; a real recovery that
                  # replaces the original keeps archiving (drop this option), on a timeline of its own
                  "--target-action=promote", "--archive-mode=off", "restore")
        # the copy names the old cluster's socket folder: this one listens in its own
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"\n# restored by the drill\nunix_socket_directories = '{target.paths.run}'\n")
