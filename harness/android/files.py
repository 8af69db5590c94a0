"""List and pull the app's private files (``/data/data/<package>``).

The shell user cannot read another app's data, so every access goes through one of:

* ``run-as <package>`` — works for debuggable builds on any device; commands run as the app
  with its data directory as the working directory;
* adbd running as root (``adb root`` on a userdebug emulator) — plain commands suffice;
* ``su 0`` — emulator images without Google Play, and rooted phones.

:class:`AppFiles` probes these once, in that order, and then uses the first that works.
Content is read through ``exec:`` (no terminal), so binary files arrive unchanged.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from harness.android.device import AndroidDevice
from harness.android.errors import AdbCommandError, AppDataAccessError

log = logging.getLogger(__name__)

ACCESS_RUN_AS = "run-as"
ACCESS_SU = "su"
ACCESS_ROOT_ADBD = "root-adbd"


class AppFiles:
    """Read access to one package's data directory on one device."""

    def __init__(self, device: AndroidDevice, package: str) -> None:
        self.device = device
        self.package = package
        self.data_dir = f"/data/data/{package}"
        self._access: str | None = None

    def access(self) -> str:
        """Return how the data directory is reached (run-as, su, root-adbd); probe once."""
        if self._access is None:
            self._access = self._probe()
            log.info("app files of %s on %s read via %s", self.package, self.device.serial, self._access)
        return self._access

    def _probe(self) -> str:
        run_as = self.device.shell(["run-as", self.package, "id"], check=False)
        if run_as.exit_code == 0:
            return ACCESS_RUN_AS
        plain = self.device.shell(["id"], check=False)
        if "uid=0" in plain.stdout:
            return ACCESS_ROOT_ADBD
        su = self.device.shell(["su", "0", "id"], check=False)
        if su.exit_code == 0 and "uid=0" in su.stdout:
            return ACCESS_SU
        raise AppDataAccessError(
            f"cannot read the files of {self.package} on {self.device.serial}: run-as failed "
            f"({run_as.output.strip() or 'no output'}) and the device is not rooted; use a "
            "debuggable build, or an emulator image without Google Play (then `adb root`)"
        )

    def command(self, *args: str, relative: str | None = None) -> list[str]:
        """Wrap a command so it runs with access to the data directory.

        Paths in ``args`` must be absolute inside the data directory; with run-as they are
        rewritten relative to it (run-as starts there).
        """
        mode = self.access()
        if mode == ACCESS_RUN_AS:
            rewritten = [self._relative(arg) for arg in args]
            return ["run-as", self.package, *rewritten]
        if mode == ACCESS_SU:
            return ["su", "0", *args]
        return list(args)

    def _relative(self, arg: str) -> str:
        if arg == self.data_dir:
            return "."
        if arg.startswith(self.data_dir + "/"):
            return arg[len(self.data_dir) + 1:]
        return arg

    def list(self, subdir: str = "") -> list[str]:
        """Return the data-directory-relative paths of every regular file, sorted."""
        base = self._inside(subdir)
        result = self.device.shell(self.command("find", base, "-type", "f"), check=False)
        if result.exit_code != 0:
            if "No such file" in result.output:
                return []
            raise AdbCommandError(f"listing {base} of {self.package} on {self.device.serial} failed: "
                                  f"{result.output.strip()}", exit_code=result.exit_code, output=result.output)
        found = []
        for line in result.stdout.splitlines():
            line = line.strip()
            if not line:
                continue
            absolute = line if line.startswith("/") else posixpath.normpath(posixpath.join(self.data_dir, line))
            found.append(self._checked_relative(absolute))
        return sorted(found)

    def read(self, relative: str) -> bytes:
        """Return one file's bytes."""
        return self.device.read_output(self.command("cat", self._inside(relative)))

    def pull(self, destination: Path, subdir: str = "") -> list[Path]:
        """Copy the files under ``subdir`` into ``destination``, keeping their layout.

        The copy is written to a temporary folder first and moved into place at the end, so an
        error leaves no half-copied snapshot behind.
        """
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=destination.parent))
        try:
            written = []
            for relative in self.list(subdir):
                target = staging.joinpath(*PurePosixPath(relative).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(relative))
                written.append(relative)
            if destination.exists():
                shutil.rmtree(destination)
            os.replace(staging, destination)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        log.info("pulled %d files of %s from %s", len(written), self.package, self.device.serial)
        return [destination.joinpath(*PurePosixPath(relative).parts) for relative in written]

    def _inside(self, relative: str) -> str:
        path = posixpath.normpath(posixpath.join(self.data_dir, relative)) if relative else self.data_dir
        if path != self.data_dir and not path.startswith(self.data_dir + "/"):
            raise AppDataAccessError(f"path {relative!r} is outside the data directory of {self.package}")
        return path

    def _checked_relative(self, absolute: str) -> str:
        if not absolute.startswith(self.data_dir + "/"):
            raise AppDataAccessError(f"the device listed {absolute!r}, outside {self.data_dir}; refusing to copy it")
        relative = absolute[len(self.data_dir) + 1:]
        if any(part in ("", ".", "..") for part in relative.split("/")):
            raise AppDataAccessError(f"the device listed an unsafe path {absolute!r}; refusing to copy it")
        return relative
