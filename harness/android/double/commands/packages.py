"""``pm``, ``run-as`` and ``su`` on the simulated device: the package manager and identities."""

from __future__ import annotations

import secrets

from harness.android.double.apk import ApkError, read_manifest
from harness.android.double.device import InstalledPackage, SimulatedDevice
from harness.android.double.filesystem import ROOT, FileSystemError, Identity
from harness.android.double.shell import CommandContext, command

# Runtime ("dangerous") permissions: granted by `pm install -g` or `pm grant`, revocable.
# Every other requested permission is an install-time permission, granted on install.
RUNTIME_PERMISSIONS = frozenset(f"android.permission.{name}" for name in (
    "ACCESS_BACKGROUND_LOCATION", "ACCESS_COARSE_LOCATION", "ACCESS_FINE_LOCATION",
    "ACCESS_MEDIA_LOCATION", "ACTIVITY_RECOGNITION", "ANSWER_PHONE_CALLS", "BLUETOOTH_ADVERTISE",
    "BLUETOOTH_CONNECT", "BLUETOOTH_SCAN", "BODY_SENSORS", "CALL_PHONE", "CAMERA",
    "GET_ACCOUNTS", "NEARBY_WIFI_DEVICES", "POST_NOTIFICATIONS", "READ_CALENDAR",
    "READ_CALL_LOG", "READ_CONTACTS", "READ_EXTERNAL_STORAGE", "READ_MEDIA_AUDIO",
    "READ_MEDIA_IMAGES", "READ_MEDIA_VIDEO", "READ_PHONE_NUMBERS", "READ_PHONE_STATE",
    "READ_SMS", "RECEIVE_SMS", "RECORD_AUDIO", "SEND_SMS", "WRITE_CALENDAR", "WRITE_CALL_LOG",
    "WRITE_CONTACTS", "WRITE_EXTERNAL_STORAGE",
))


def app_identity(package: InstalledPackage) -> Identity:
    return Identity(package.uid, f"u0_a{package.uid - 10_000}", package.name)


@command("pm")
def pm(ctx: CommandContext, args: list[str]) -> int:
    args = drop_user_option(args)
    if not args:
        ctx.err("pm: missing subcommand\n")
        return 1
    handler = _PM_SUBCOMMANDS.get(args[0])
    if handler is None:
        ctx.err(f"Unknown command: {args[0]}\n")
        return 1
    return handler(ctx, args[1:])


def drop_user_option(args: list[str]) -> list[str]:
    result, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--user":
            skip = True
        else:
            result.append(arg)
    return result


def _install(ctx: CommandContext, args: list[str]) -> int:
    flags = {arg for arg in args if arg.startswith("-")}
    paths = [arg for arg in args if not arg.startswith("-")]
    if len(paths) != 1:
        ctx.err("Error: must specify one APK file\n")
        return 1
    device = ctx.device
    try:
        device.fs.check(ctx.identity, ctx.path(paths[0]))
        host_file = device.fs.host_path(ctx.path(paths[0]))
        if not host_file.is_file():
            raise FileSystemError(paths[0], "No such file or directory")
        manifest = read_manifest(host_file)
    except FileSystemError as error:
        ctx.out(f"Failure [INSTALL_FAILED_INVALID_URI: {error}]\n")
        return 1
    except ApkError as error:
        ctx.out(f"Failure [{error}]\n")
        return 1
    with device.lock:
        # Since Android 7 `pm install` always replaces an installed package ("-r" is implied).
        existing = device.packages.get(manifest.package)
        if existing and manifest.version_code < existing.manifest.version_code and "-d" not in flags:
            ctx.out(f"Failure [INSTALL_FAILED_VERSION_DOWNGRADE: Downgrade detected: Update version "
                    f"code {manifest.version_code} is older than current "
                    f"{existing.manifest.version_code}]\n")
            return 1
        if existing:
            device.runtime(manifest.package).stop()
        apk_path = f"/data/app/~~{secrets.token_hex(8)}/{manifest.package}-1/base.apk"
        device.fs.mkdir(ROOT, apk_path.rsplit("/", 1)[0], parents=True)
        device.fs.write_bytes(ROOT, apk_path, host_file.read_bytes())
        granted = set(existing.granted) if existing else set()
        granted |= {name for name in manifest.permissions if name not in RUNTIME_PERMISSIONS}
        if "-g" in flags:
            granted |= {name for name in manifest.permissions if name in RUNTIME_PERMISSIONS}
        record = InstalledPackage(manifest, apk_path, existing.uid if existing else device.allocate_uid(),
                                  existing.install_time_ms if existing else device.now_ms(), granted)
        device.packages[manifest.package] = record
        device.fs.mkdir(ROOT, record.data_dir, parents=True)
        device.runtimes.pop(manifest.package, None)
    device.log("PackageManager", f"{'Replaced' if existing else 'Installed'} {manifest.package} "
               f"versionCode={manifest.version_code}", pid=600)
    ctx.out("Success\n")
    return 0


def _uninstall(ctx: CommandContext, args: list[str]) -> int:
    keep_data = "-k" in args
    names = [arg for arg in args if not arg.startswith("-")]
    device = ctx.device
    if not names or names[0] not in device.packages:
        ctx.out("Failure [DELETE_FAILED_INTERNAL_ERROR]\n")
        return 1
    package = names[0]
    with device.lock:
        runtime = device.runtimes.pop(package, None)
        if runtime:
            runtime.on_uninstalled()
        record = device.packages.pop(package)
        if device.foreground == package:
            device.foreground = None
        if not keep_data:
            device.fs.remove(ROOT, record.data_dir, recursive=True)
    device.log("PackageManager", f"Removed {package}", pid=600)
    ctx.out("Success\n")
    return 0


def _clear(ctx: CommandContext, args: list[str]) -> int:
    device = ctx.device
    if not args or args[0] not in device.packages:
        ctx.out("Failed\n")
        return 1
    package = device.packages[args[0]]
    runtime = device.runtime(package.name)
    runtime.stop()
    with device.lock:
        device.fs.clear_directory(package.data_dir)
        package.granted -= RUNTIME_PERMISSIONS
    runtime.on_data_cleared()
    device.log("ActivityManager", f"Cleared data of {package.name}", pid=600)
    ctx.out("Success\n")
    return 0


def _grant_or_revoke(grant: bool):
    verb = "grant" if grant else "revoke"

    def handler(ctx: CommandContext, args: list[str]) -> int:
        if len(args) != 2:
            ctx.err(f"Error: {verb} needs a package and a permission\n")
            return 1
        name, permission = args
        package = ctx.device.packages.get(name)
        problem = None
        if package is None:
            problem = f"java.lang.IllegalArgumentException: Unknown package: {name}"
        elif permission not in package.manifest.permissions:
            problem = f"java.lang.SecurityException: Package {name} has not requested permission {permission}"
        elif permission not in RUNTIME_PERMISSIONS:
            problem = (f"java.lang.SecurityException: Permission {permission} requested by {name} "
                       "is not a changeable permission type")
        if problem:
            ctx.err(f"Exception occurred while executing '{verb}':\n{problem}\n")
            return 255
        with ctx.device.lock:
            if grant:
                package.granted.add(permission)
            else:
                package.granted.discard(permission)
                ctx.device.runtime(name).stop()  # revoking a runtime permission kills the app
        return 0

    return handler


def _list(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] != ["packages"]:
        ctx.err("pm list: only 'packages' is supported by the double\n")
        return 1
    options = [arg for arg in args[1:] if arg.startswith("-")]
    words = [arg for arg in args[1:] if not arg.startswith("-")]
    system = ["android", "com.android.shell", "com.android.systemui", "com.android.launcher3"]
    names = sorted(ctx.device.packages) if "-3" in options else sorted(system + list(ctx.device.packages))
    for name in names:
        if words and words[0] not in name:
            continue
        if "-f" in options and name in ctx.device.packages:
            ctx.out(f"package:{ctx.device.packages[name].apk_path}={name}\n")
        else:
            ctx.out(f"package:{name}\n")
    return 0


def _path(ctx: CommandContext, args: list[str]) -> int:
    package = ctx.device.packages.get(args[0]) if args else None
    if package is None:
        return 1
    ctx.out(f"package:{package.apk_path}\n")
    return 0


def _dump(ctx: CommandContext, args: list[str]) -> int:
    package = ctx.device.packages.get(args[0]) if args else None
    if package is None:
        ctx.out("Unable to find package\n")
        return 0
    ctx.out(describe_package(package))
    return 0


def describe_package(package: InstalledPackage) -> str:
    """Render the ``dumpsys package`` section of one package (the fields clients parse)."""
    manifest = package.manifest
    flags = "DEBUGGABLE HAS_CODE ALLOW_CLEAR_USER_DATA" if manifest.debuggable else "HAS_CODE ALLOW_CLEAR_USER_DATA"
    lines = [
        "Packages:",
        f"  Package [{manifest.package}] (5a1d0c3):",
        f"    userId={package.uid}",
        f"    codePath={package.apk_path.rsplit('/', 1)[0]}",
        f"    versionCode={manifest.version_code} minSdk=26 targetSdk=34",
        f"    versionName={manifest.version_name or 'null'}",
        f"    pkgFlags=[ {flags} ]",
        "    requested permissions:",
        *[f"      {name}" for name in manifest.permissions],
        "    install permissions:",
        *[f"      {name}: granted=true" for name in manifest.permissions if name not in RUNTIME_PERMISSIONS],
        "    runtime permissions:",
        *[f"      {name}: granted={'true' if name in package.granted else 'false'}, flags=[ USER_SENSITIVE_WHEN_GRANTED ]"
          for name in manifest.permissions if name in RUNTIME_PERMISSIONS],
    ]
    return "\n".join(lines) + "\n"


_PM_SUBCOMMANDS = {
    "install": _install, "uninstall": _uninstall, "clear": _clear,
    "grant": _grant_or_revoke(True), "revoke": _grant_or_revoke(False),
    "list": _list, "path": _path, "dump": _dump,
}


@command("run-as")
def run_as(ctx: CommandContext, args: list[str]) -> int:
    args = drop_user_option(args)
    if not args:
        ctx.err("usage: run-as <package-name> [--user <uid>] <command> [<args>]\n")
        return 1
    package = ctx.device.packages.get(args[0])
    if package is None:
        ctx.err(f"run-as: unknown package: {args[0]}\n")
        return 1
    if not package.manifest.debuggable:
        ctx.err(f"run-as: package not debuggable: {args[0]}\n")
        return 1
    if len(args) == 1:
        ctx.err("run-as: the double runs commands only (run-as PACKAGE COMMAND...)\n")
        return 1
    return _run_as_identity(ctx, app_identity(package), package.data_dir, args[1:])


@command("su")
def su(ctx: CommandContext, args: list[str]) -> int:
    device: SimulatedDevice = ctx.device
    if not device.rooted:
        ctx.err("/system/bin/sh: su: inaccessible or not found\n")
        return 127
    if args[:1] == ["-c"] and len(args) >= 2:
        args = ["0", "sh", "-c", args[1]]
    if not args:
        ctx.err("su: the double runs commands only (su 0 COMMAND...)\n")
        return 1
    if args[0] not in ("0", "root"):
        ctx.err(f"su: the double switches to root only, not {args[0]}\n")
        return 1
    if len(args) == 1:
        ctx.err("su: the double runs commands only (su 0 COMMAND...)\n")
        return 1
    return _run_as_identity(ctx, ROOT, ctx.cwd, args[1:])


def _run_as_identity(ctx: CommandContext, who: Identity, cwd: str, argv: list[str]) -> int:
    child = CommandContext(ctx.device, who, cwd, ctx.env, ctx.stdin, ctx.stdout, ctx.stderr,
                           ctx.cancelled, ctx.shell)
    return ctx.shell.execute(child, argv)
