"""A real OpenSSH server on 127.0.0.1 for the device tests: its own host key, a key pair made
for the test, and a client config that trusts exactly that host key (no other file of the
user's is read or written)."""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_sshd() -> str:
    """The sshd binary; skip without one, or fail under EDGECNN_REQUIRE_SSH (``make test``)."""
    found = shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if Path(p).is_file()), None)
    if found and shutil.which("ssh") and shutil.which("ssh-keygen"):
        return found
    message = "OpenSSH server/client not installed (make ssh: apt-get install openssh-server)"
    if os.environ.get("EDGECNN_REQUIRE_SSH"):
        pytest.fail(message)
    pytest.skip(message)


class Sshd:
    """sshd in the foreground on a free loopback port; ``stop()`` kills it and every session it
    serves (a dropped connection), ``start()`` brings it back on the same port and keys."""

    def __init__(self, folder: Path) -> None:
        self.binary = need_sshd()
        self.folder = folder
        self.port = free_port()
        for name in ("host_key", "client_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)], check=True)
        shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "PermitRootLogin prohibit-password\nLogLevel ERROR\n")
        host_key = " ".join((folder / "host_key.pub").read_text().split()[:2])
        (folder / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key}\n")
        (folder / "empty_known_hosts").write_text("")
        self.config = self.client_config("known_hosts")
        self.proc: subprocess.Popen | None = None

    def client_config(self, known_hosts: str, port: int | None = None) -> Path:
        """An ssh_config for Host ``loop`` that trusts the host keys in ``known_hosts``."""
        path = self.folder / f"ssh_config.{known_hosts}.{port or self.port}"
        path.write_text(
            f"Host loop\n  HostName 127.0.0.1\n  Port {port or self.port}\n  User {getpass.getuser()}\n"
            f"  IdentityFile {self.folder / 'client_key'}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.folder / known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n")
        return path

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(exist_ok=True)  # its privilege-separation folder
        self.proc = subprocess.Popen([self.binary, "-D", "-e", "-f", str(self.folder / "sshd_config")],
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start")

    def stop(self) -> None:
        """Kill sshd and its per-connection children at once: every session drops."""
        if self.proc is None:
            return
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.proc = None


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
