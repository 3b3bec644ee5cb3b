"""A throwaway PostgreSQL server for the tests and the benchmarks: `initdb` into a temporary
directory, listening only on a Unix socket in that directory, on a free port, stopped and
removed at the end.

PostgreSQL refuses to run as root (our machines and CI run as root): then the server runs as
`nobody`, through `runuser`, in a directory that user owns. The tool connects as `shop`, an
ordinary role (not a superuser) that owns the databases it uses, as on a rented server; the
tests create one database per test as that role (it may CREATEDB, nothing more).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

BINARIES = ("initdb", "pg_ctl", "postgres")
ROLE = "shop"


def binaries_dir() -> Path | None:
    """The folder holding initdb, pg_ctl and postgres (PATH, then Debian's versioned folders), or None."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).parent] if found else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in candidates:
        if all((folder / name).exists() for name in BINARIES):
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`Server().start()`; `.url(dbname)`; `.admin(sql)`; `.stop()`."""

    def __init__(self, shared_buffers: str = "128MB"):
        self.shared_buffers = shared_buffers
        self.bin = binaries_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl, postgres) are not installed")
        self.base = Path(tempfile.mkdtemp(prefix="loyalty-pg-"))
        self.data = self.base / "data"
        self.port = _free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", "nobody", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd=self.base)

    def start(self) -> "Server":
        if self.as_root:
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.base, 0o755)  # the socket's folder: reachable by the tests' user
        try:
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                      "--locale=C.UTF-8", "--no-sync")
            options = (f"-k {self.base} -p {self.port} -c listen_addresses='' -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200 "
                       f"-c shared_buffers={self.shared_buffers}")
            self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"),
                      "-w", "-t", "60", "start")
        except subprocess.CalledProcessError as exc:
            log = (self.base / "log").read_text(errors="replace") if (self.base / "log").exists() else ""
            self.stop()
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}{log[-2000:]}") from None
        self.admin(f"CREATE ROLE {ROLE} LOGIN CREATEDB NOSUPERUSER")
        return self

    def url(self, dbname: str, user: str = ROLE) -> str:
        return f"postgresql://{user}@/{dbname}?host={self.base}&port={self.port}"

    def admin(self, sql: str, dbname: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(dbname, "postgres"), autocommit=True) as conn:
            conn.execute(sql)

    def create_db(self, name: str) -> str:
        """A new, empty database owned by the tool's ordinary role; its URL."""
        self.admin(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        return self.url(name)

    def drop_db(self, name: str) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)


if __name__ == "__main__":  # a server to try things by hand: prints its URL, stops on Enter
    server = Server().start()
    print(server.create_db("loyalty"))
    try:
        input("Enter stops the server. ")
    finally:
        server.stop()
