"""The simulated device's file system: device paths backed by a host directory.

Device paths map one to one onto files under ``root`` on the host, so the app hosted by the
double can keep its data directory there and the harness pulls it through sync or ``run-as``
exactly as from a phone. Access follows Android's split between the shell user, an app's own
uid and root: the shell user cannot read ``/data/data/<package>``, which is why the harness
needs ``run-as`` (debuggable builds) or root.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import stat as stat_module
from pathlib import Path

# Aliases Android resolves to one place: the per-user app data path and the shared storage.
_ALIASES = (("/data/user/0/", "/data/data/"), ("/sdcard/", "/storage/emulated/0/"))
_SHELL_WRITABLE = ("/data/local/tmp/", "/storage/emulated/0/")
_SHELL_READABLE = _SHELL_WRITABLE + ("/system/", "/data/user_de/0/com.android.shell/")


@dataclasses.dataclass(frozen=True)
class Identity:
    """The user a command runs as: root, the shell user, or an app's uid (``run-as``)."""

    uid: int
    name: str
    package: str | None = None

    @property
    def is_root(self) -> bool:
        return self.uid == 0


ROOT = Identity(0, "root")
SHELL = Identity(2000, "shell")


class FileSystemError(OSError):
    """A failed file operation; ``str()`` reads like toybox's message (path: reason)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def normalize(path: str, cwd: str = "/") -> str:
    """Return the absolute, normalized device path (aliases resolved)."""
    joined = path if path.startswith("/") else posixpath.join(cwd, path)
    result = posixpath.normpath(joined)
    if result.startswith("//"):
        result = result[1:]
    for alias, target in _ALIASES:
        if result + "/" == alias:
            return target.rstrip("/")
        if result.startswith(alias):
            return target + result[len(alias):]
    return result


class DeviceFileSystem:
    """Device paths under a host ``root`` directory, with Android's access split."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for directory in ("data/local/tmp", "data/data", "storage/emulated/0", "system/bin",
                          "data/user_de/0/com.android.shell/files/bugreports"):
            (root / directory).mkdir(parents=True, exist_ok=True)

    def host_path(self, device_path: str) -> Path:
        """Return the host file behind an absolute, normalized device path."""
        relative = device_path.lstrip("/")
        host = (self.root / relative) if relative else self.root
        # normalize() already removed "..", so this only guards against symlinks.
        resolved = host.resolve()
        if resolved != self.root.resolve() and self.root.resolve() not in resolved.parents:
            raise FileSystemError(device_path, "Permission denied")
        return host

    # Access rules ---------------------------------------------------------------------
    def check(self, who: Identity, device_path: str, *, write: bool = False) -> None:
        """Raise FileSystemError("Permission denied") when ``who`` may not use the path."""
        if who.is_root:
            return
        probe = device_path.rstrip("/") + "/"
        if who.package is not None:
            own = f"/data/data/{who.package}/"
            if probe.startswith(own) or (not write and probe.startswith("/data/local/tmp/")):
                return
            if probe == "/data/data/" or probe == own:
                return
        else:
            allowed = _SHELL_WRITABLE if write else _SHELL_READABLE
            if any(probe.startswith(prefix) for prefix in allowed):
                return
            # The shell may traverse /data/local and list the top of shared storage.
            if not write and probe in ("/", "/data/", "/data/local/", "/storage/", "/sdcard/"):
                return
        # Outside app data a missing file reads as missing (the operation reports ENOENT);
        # inside another app's data the shell cannot even tell whether it exists.
        if not write and not probe.startswith("/data/data/") and not self.host_path(device_path).exists():
            return
        raise FileSystemError(device_path, "Permission denied")

    # Operations -------------------------------------------------------------------------
    def read_bytes(self, who: Identity, device_path: str) -> bytes:
        self.check(who, device_path)
        host = self.host_path(device_path)
        if host.is_dir():
            raise FileSystemError(device_path, "Is a directory")
        try:
            return host.read_bytes()
        except FileNotFoundError:
            raise FileSystemError(device_path, "No such file or directory") from None

    def write_bytes(self, who: Identity, device_path: str, data: bytes, *, append: bool = False,
                    mode: int | None = None) -> None:
        self.check(who, device_path, write=True)
        host = self.host_path(device_path)
        if not host.parent.is_dir():
            raise FileSystemError(device_path, "No such file or directory")
        if host.is_dir():
            raise FileSystemError(device_path, "Is a directory")
        with open(host, "ab" if append else "wb") as handle:
            handle.write(data)
        if mode is not None:
            os.chmod(host, mode & 0o777)

    def stat(self, who: Identity, device_path: str) -> os.stat_result:
        self.check(who, device_path)
        try:
            return self.host_path(device_path).stat()
        except FileNotFoundError:
            raise FileSystemError(device_path, "No such file or directory") from None

    def exists(self, device_path: str) -> bool:
        return self.host_path(device_path).exists()

    def is_dir(self, device_path: str) -> bool:
        return self.host_path(device_path).is_dir()

    def listdir(self, who: Identity, device_path: str) -> list[str]:
        self.check(who, device_path)
        host = self.host_path(device_path)
        if not host.exists():
            raise FileSystemError(device_path, "No such file or directory")
        if not host.is_dir():
            raise FileSystemError(device_path, "Not a directory")
        return sorted(entry.name for entry in host.iterdir())

    def walk_files(self, who: Identity, device_path: str) -> list[str]:
        """Return every path (directories and files) under ``device_path``, itself included."""
        self.check(who, device_path)
        host = self.host_path(device_path)
        if not host.exists():
            raise FileSystemError(device_path, "No such file or directory")
        found = [device_path]
        if host.is_dir():
            for directory, subdirs, files in os.walk(host):
                subdirs.sort()
                base = "/" + Path(directory).relative_to(self.root).as_posix()
                for name in subdirs + sorted(files):
                    found.append(posixpath.join(base, name))
        return found

    def mkdir(self, who: Identity, device_path: str, *, parents: bool = False) -> None:
        self.check(who, device_path, write=True)
        host = self.host_path(device_path)
        try:
            host.mkdir(parents=parents, exist_ok=parents)
        except FileExistsError:
            raise FileSystemError(device_path, "File exists") from None
        except FileNotFoundError:
            raise FileSystemError(device_path, "No such file or directory") from None

    def remove(self, who: Identity, device_path: str, *, recursive: bool = False) -> None:
        self.check(who, device_path, write=True)
        host = self.host_path(device_path)
        if not host.exists() and not host.is_symlink():
            raise FileSystemError(device_path, "No such file or directory")
        if host.is_dir():
            if not recursive:
                raise FileSystemError(device_path, "Is a directory")
            shutil.rmtree(host)
        else:
            host.unlink()

    def clear_directory(self, device_path: str) -> None:
        """Delete everything inside a directory (``pm clear``), keeping the directory."""
        host = self.host_path(device_path)
        if not host.is_dir():
            return
        for entry in host.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def file_mode(result: os.stat_result) -> int:
    """Return the st_mode with the type bits the sync protocol reports."""
    return stat_module.S_IFMT(result.st_mode) | stat_module.S_IMODE(result.st_mode)
