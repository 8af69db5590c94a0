"""File and process commands of toybox, as the simulated device's shell runs them."""

from __future__ import annotations

import hashlib
import posixpath
import stat as stat_module
import time

from harness.android.double.filesystem import FileSystemError
from harness.android.double.shell import COMMANDS, CommandContext, command


@command("echo")
def echo(ctx: CommandContext, args: list[str]) -> int:
    newline = True
    if args and args[0] == "-n":
        newline, args = False, args[1:]
    ctx.out(" ".join(args) + ("\n" if newline else ""))
    return 0


@command("true")
def true(ctx: CommandContext, args: list[str]) -> int:
    return 0


@command("false")
def false(ctx: CommandContext, args: list[str]) -> int:
    return 1


@command("sleep")
def sleep(ctx: CommandContext, args: list[str]) -> int:
    try:
        seconds = float(args[0]) if args else 0.0
    except ValueError:
        ctx.err(f"sleep: invalid number '{args[0]}'\n")
        return 1
    ctx.cancelled.wait(seconds)
    return 0


def _user_name(ctx: CommandContext) -> str:
    who = ctx.identity
    return who.name if who.package is None else f"u0_a{who.uid - 10_000}"


@command("id")
def identity(ctx: CommandContext, args: list[str]) -> int:
    uid, name = ctx.identity.uid, _user_name(ctx)
    if args and args[0] == "-u":
        ctx.out(f"{uid}\n")
    else:
        ctx.out(f"uid={uid}({name}) gid={uid}({name}) context=u:r:{_domain(ctx)}:s0\n")
    return 0


@command("whoami")
def whoami(ctx: CommandContext, args: list[str]) -> int:
    ctx.out(_user_name(ctx) + "\n")
    return 0


def _domain(ctx: CommandContext) -> str:
    if ctx.identity.is_root:
        return "su"
    return "runas_app" if ctx.identity.package else "shell"


@command("cat")
def cat(ctx: CommandContext, args: list[str]) -> int:
    if not args:
        ctx.out(ctx.stdin)
        return 0
    status = 0
    for name in args:
        try:
            ctx.out(ctx.device.fs.read_bytes(ctx.identity, ctx.path(name)))
        except FileSystemError as error:
            ctx.err(f"cat: {name}: {error.reason}\n")
            status = 1
    return status


@command("ls")
def ls(ctx: CommandContext, args: list[str]) -> int:
    flags = "".join(arg[1:] for arg in args if arg.startswith("-"))
    targets = [arg for arg in args if not arg.startswith("-")] or ["."]
    status = 0
    for name in targets:
        path = ctx.path(name)
        try:
            if ctx.device.fs.is_dir(path):
                entries = ctx.device.fs.listdir(ctx.identity, path)
                if "a" in flags:
                    entries = [".", ".."] + entries
            else:
                ctx.device.fs.stat(ctx.identity, path)
                entries = [name]
        except FileSystemError as error:
            ctx.err(f"ls: {name}: {error.reason}\n")
            status = 1
            continue
        for entry in entries:
            if "l" in flags:
                full = path if entry == name and not ctx.device.fs.is_dir(path) else posixpath.join(path, entry)
                result = ctx.device.fs.stat(ctx.identity, posixpath.normpath(full))
                kind = "d" if stat_module.S_ISDIR(result.st_mode) else "-"
                stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(result.st_mtime))
                ctx.out(f"{kind}rw-rw---- 1 {ctx.identity.name} {ctx.identity.name} "
                        f"{result.st_size:8d} {stamp} {entry}\n")
            else:
                ctx.out(entry + "\n")
    return status


@command("rm")
def rm(ctx: CommandContext, args: list[str]) -> int:
    flags = "".join(arg[1:] for arg in args if arg.startswith("-"))
    status = 0
    for name in (arg for arg in args if not arg.startswith("-")):
        try:
            ctx.device.fs.remove(ctx.identity, ctx.path(name), recursive="r" in flags or "R" in flags)
        except FileSystemError as error:
            if "f" in flags and error.reason == "No such file or directory":
                continue
            ctx.err(f"rm: {name}: {error.reason}\n")
            status = 1
    return status


@command("mkdir")
def mkdir(ctx: CommandContext, args: list[str]) -> int:
    parents = "-p" in args
    status = 0
    for name in (arg for arg in args if not arg.startswith("-")):
        try:
            ctx.device.fs.mkdir(ctx.identity, ctx.path(name), parents=parents)
        except FileSystemError as error:
            ctx.err(f"mkdir: {name}: {error.reason}\n")
            status = 1
    return status


@command("cp")
def cp(ctx: CommandContext, args: list[str]) -> int:
    names = [arg for arg in args if not arg.startswith("-")]
    if len(names) != 2:
        ctx.err("cp: needs 2 arguments\n")
        return 1
    source, target = ctx.path(names[0]), ctx.path(names[1])
    try:
        if ctx.device.fs.is_dir(target):
            target = posixpath.join(target, posixpath.basename(source))
        ctx.device.fs.write_bytes(ctx.identity, target, ctx.device.fs.read_bytes(ctx.identity, source))
    except FileSystemError as error:
        ctx.err(f"cp: {error}\n")
        return 1
    return 0


@command("chmod", "chown", "sync")
def accept_silently(ctx: CommandContext, args: list[str]) -> int:
    return 0


@command("find")
def find(ctx: CommandContext, args: list[str]) -> int:
    roots: list[str] = []
    kind = None
    index = 0
    while index < len(args) and not args[index].startswith("-"):
        roots.append(args[index])
        index += 1
    while index < len(args):
        if args[index] == "-type" and index + 1 < len(args):
            kind = args[index + 1]
            index += 2
        else:
            ctx.err(f"find: unknown option {args[index]}\n")
            return 1
    status = 0
    for root in roots or ["."]:
        base = ctx.path(root)
        try:
            paths = ctx.device.fs.walk_files(ctx.identity, base)
        except FileSystemError as error:
            ctx.err(f"find: {root}: {error.reason}\n")
            status = 1
            continue
        for path in paths:
            is_dir = ctx.device.fs.is_dir(path)
            if kind == "f" and is_dir or kind == "d" and not is_dir:
                continue
            shown = root.rstrip("/") + path[len(base):] if path != base else root
            ctx.out(shown + "\n")
    return status


@command("stat")
def stat(ctx: CommandContext, args: list[str]) -> int:
    fmt = "%n %s"
    names = []
    index = 0
    while index < len(args):
        if args[index] == "-c" and index + 1 < len(args):
            fmt, index = args[index + 1], index + 2
        else:
            names.append(args[index])
            index += 1
    status = 0
    for name in names:
        try:
            result = ctx.device.fs.stat(ctx.identity, ctx.path(name))
        except FileSystemError as error:
            ctx.err(f"stat: {name}: {error.reason}\n")
            status = 1
            continue
        text = (fmt.replace("%s", str(result.st_size)).replace("%n", name)
                .replace("%Y", str(int(result.st_mtime))).replace("%a", f"{result.st_mode & 0o777:o}"))
        ctx.out(text + "\n")
    return status


@command("md5sum", "md5")
def md5sum(ctx: CommandContext, args: list[str]) -> int:
    status = 0
    for name in args:
        try:
            digest = hashlib.md5(ctx.device.fs.read_bytes(ctx.identity, ctx.path(name))).hexdigest()
        except FileSystemError as error:
            ctx.err(f"md5sum: {name}: {error.reason}\n")
            status = 1
            continue
        ctx.out(f"{digest}  {name}\n")
    return status


@command("toybox")
def toybox(ctx: CommandContext, args: list[str]) -> int:
    if not args:
        ctx.out(" ".join(sorted(COMMANDS)) + "\n")
        return 0
    return ctx.shell.execute(ctx, args)


@command("sh")
def sh(ctx: CommandContext, args: list[str]) -> int:
    if len(args) >= 2 and args[0] == "-c":
        return ctx.shell.run(args[1], identity=ctx.identity, stdout=ctx.stdout, stderr=ctx.stderr,
                             cancelled=ctx.cancelled, cwd=ctx.cwd, stdin=ctx.stdin, env=ctx.env)
    ctx.err("sh: interactive shells are not supported by the double; use sh -c COMMAND\n")
    return 2


@command("uptime")
def uptime(ctx: CommandContext, args: list[str]) -> int:
    ctx.out(" 00:10:00 up 10 min,  0 users,  load average: 0.10, 0.05, 0.01\n")
    return 0


@command("getprop")
def getprop(ctx: CommandContext, args: list[str]) -> int:
    properties = ctx.device.properties
    if args:
        ctx.out(properties.get(args[0], args[1] if len(args) > 1 else "") + "\n")
        return 0
    for key in sorted(properties):
        ctx.out(f"[{key}]: [{properties[key]}]\n")
    return 0


@command("setprop")
def setprop(ctx: CommandContext, args: list[str]) -> int:
    if len(args) != 2:
        ctx.err("setprop: need 2 arguments\n")
        return 1
    name, value = args
    if name.startswith("ro.") and name in ctx.device.properties or not ctx.identity.is_root and (
            name.startswith("persist.") or name.startswith("ro.")):
        ctx.err(f"Failed to set property '{name}' to '{value}'.\n")
        return 1
    if name == "persist.sys.timezone":
        try:
            ctx.device.set_timezone(value)
        except ValueError as error:
            ctx.err(f"{error}\n")
            return 1
        return 0
    with ctx.device.lock:
        ctx.device.properties[name] = value
    return 0


@command("pidof")
def pidof(ctx: CommandContext, args: list[str]) -> int:
    pids = [str(pid) for name in args if (pid := ctx.device.pid_of(name)) is not None]
    if not pids:
        return 1
    ctx.out(" ".join(pids) + "\n")
    return 0


@command("ps")
def ps(ctx: CommandContext, args: list[str]) -> int:
    ctx.out("USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME\n")
    ctx.out("root             1     0 10904084  4012 do_epoll_wait       0 S init\n")
    for package, runtime in sorted(ctx.device.runtimes.items()):
        if runtime.pid is not None:
            uid = ctx.device.packages[package].uid if package in ctx.device.packages else 10_000
            ctx.out(f"u0_a{uid - 10_000:<10d} {runtime.pid:5d}   300 14569664 120000 "
                    f"do_epoll_wait       0 S {package}\n")
    return 0


@command("wm")
def wm(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] == ["size"]:
        ctx.out("Physical size: 1080x2340\n")
        return 0
    if args[:1] == ["density"]:
        ctx.out("Physical density: 420\n")
        return 0
    ctx.err("wm: unsupported subcommand in the double\n")
    return 1
