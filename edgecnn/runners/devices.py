"""Devices: machines a user reaches with ``ssh``, named in the targets TOML or given ad hoc.

    [devices.pi5]
    ssh = "pi@raspberrypi.local"      # anything ``ssh`` accepts: user@host, a Host alias
    python = "/usr/bin/python3"       # optional: an interpreter that has numpy + onnxruntime
    workdir = ".cache/edgecnn-device" # optional: the device's cache, relative to the login's home

``--device user@host[:port]`` names a device that is in no file (its name is the host).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path

from edgecnn.errors import EdgeCNNError
from edgecnn.runtime.isa import ISA_CLASSES
from edgecnn.store.toml_file import read_toml

DEFAULT_WORKDIR = ".cache/edgecnn-device"
CONNECT_TIMEOUT_S = 10
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_AD_HOC = re.compile(r"^(?:(?P<user>[A-Za-z0-9._-]+)@)?(?P<host>[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])"
                     r"(?::(?P<port>\d{1,5}))?$")


@dataclass(frozen=True)
class Device:
    """A machine reached over SSH: everything needed to run there.

    ``ssh_config`` is an ssh_config file passed as ``ssh -F`` (by default ``ssh`` reads the
    user's own ``~/.ssh/config``, agent and known_hosts, exactly as they are set up).
    """

    name: str
    ssh: str
    port: int | None = None
    python: str | None = None
    workdir: str = DEFAULT_WORKDIR
    ssh_config: str | None = None
    connect_timeout: int = CONNECT_TIMEOUT_S
    timeout_s: int | None = None  # every call's deadline; None: derived from the call's work

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name in ISA_CLASSES:
            raise EdgeCNNError(
                f"Device name {self.name!r} is not usable: letters, digits, '.', '_' and '-', "
                "and not a CPU class's name (its column sits beside theirs).")
        if not self.ssh or self.ssh.startswith("-") or any(c.isspace() for c in self.ssh):
            raise EdgeCNNError(f"Device '{self.name}': ssh = {self.ssh!r} is not a destination "
                               "ssh accepts (user@host or a Host alias).")
        if self.port is not None and not 0 < self.port < 65536:
            raise EdgeCNNError(f"Device '{self.name}': port {self.port} is not a TCP port.")
        if self.connect_timeout < 1:
            raise EdgeCNNError(f"Device '{self.name}': connect_timeout must be >= 1 s.")
        if not self.workdir or self.workdir.startswith("-") or "'" in self.workdir:
            raise EdgeCNNError(f"Device '{self.name}': workdir {self.workdir!r} is not usable.")

    @property
    def address(self) -> str:
        """``ssh`` destination and port, as the user would write it."""
        return self.ssh + (f":{self.port}" if self.port else "")


# An unknown name's error line lists this many of the file's devices.
_NAMES_SHOWN = 8


def load_devices(path: str | Path) -> dict[str, Device]:
    """The ``[devices.NAME]`` tables of a targets TOML file (none is fine)."""
    data = read_toml(path)
    tables = data.get("devices", {})
    if not isinstance(tables, dict):
        raise EdgeCNNError(f"{path}: 'devices' must be a table of [devices.NAME] tables.")
    known = {f.name for f in fields(Device)} - {"name"}
    devices = {}
    for name, values in tables.items():
        if not isinstance(values, dict):
            raise EdgeCNNError(f"{path}: [devices.{name}] must be a table.")
        unknown = sorted(set(values) - known)
        if unknown:
            raise EdgeCNNError(f"{path}: device '{name}': unknown key(s) {', '.join(unknown)}; "
                               f"known: {', '.join(sorted(known))}.")
        if "ssh" not in values:
            raise EdgeCNNError(f"{path}: device '{name}' has no ssh = \"user@host\".")
        for key in ("ssh", "python", "workdir", "ssh_config"):
            if key in values and not isinstance(values[key], str):
                raise EdgeCNNError(f"{path}: device '{name}': {key} must be a string.")
        for key in ("port", "connect_timeout", "timeout_s"):
            if key in values and (not isinstance(values[key], int) or isinstance(values[key], bool)):
                raise EdgeCNNError(f"{path}: device '{name}': {key} must be an integer.")
        if "ssh_config" in values:  # ~ is the user's home; a relative path, the file's folder
            config = Path(values["ssh_config"]).expanduser()
            values = {**values, "ssh_config": str((Path(path).parent / config).resolve())}
        devices[name] = Device(name=name, **values)
    return devices


def resolve_device(text: str, targets_file: str | Path | None = None) -> Device:
    """A device by its name in ``targets_file``, else ad hoc from ``[user@]host[:port]``."""
    devices = load_devices(targets_file) if targets_file else {}
    if text in devices:
        return devices[text]
    found = _AD_HOC.match(text)
    if not found:
        listed = ", ".join(list(devices)[:_NAMES_SHOWN]) or "none"
        more = f" and {len(devices) - _NAMES_SHOWN:,} more" if len(devices) > _NAMES_SHOWN else ""
        named = f" (the devices in {targets_file}: {listed}{more})" if targets_file else ""
        raise EdgeCNNError(f"Unknown device '{text}'{named}; name a [devices.NAME] of --targets-file, "
                           "or give user@host[:port].")
    host = found["host"].strip("[]")
    name = re.sub(r"[^A-Za-z0-9._-]", "-", host)
    if not name[0].isalnum():  # an IPv6 address such as ::1
        name = "host" + name
    destination = f"{found['user']}@{host}" if found["user"] else host
    return Device(name=name, ssh=destination, port=int(found["port"]) if found["port"] else None)


def resolve_devices(texts: list[str] | None, targets_file: str | Path | None = None) -> list[Device]:
    """Each of ``texts`` as a device (see :func:`resolve_device`), each name once."""
    devices: dict[str, Device] = {}
    for text in texts or []:
        device = resolve_device(text, targets_file)
        if device.name in devices and devices[device.name] != device:
            raise EdgeCNNError(f"Two devices are named '{device.name}'; name them in a targets file.")
        devices[device.name] = device
    return list(devices.values())

