"""``am`` and ``monkey``: starting, stopping and messaging apps on the simulated device."""

from __future__ import annotations

from harness.android.double.apps import IntentSpec
from harness.android.double.shell import CommandContext, command

_EXTRA_PARSERS = {
    "--es": str,
    "-e": str,
    "--ez": lambda value: value.lower() in ("true", "t", "1"),
    "--ei": int,
    "--el": int,
    "--ef": float,
    "--ed": float,
    "--eu": str,
    "--esa": lambda value: value.split(","),
}
LAUNCHER = "android.intent.category.LAUNCHER"


class IntentSyntaxError(ValueError):
    pass


def parse_intent(args: list[str]) -> tuple[IntentSpec, set[str]]:
    """Parse ``am`` intent arguments; return the intent and the bare flags (-W, -S...)."""
    intent = IntentSpec()
    flags: set[str] = set()
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in _EXTRA_PARSERS:
            if index + 2 >= len(args):
                raise IntentSyntaxError(f"Error: No value specified for {arg}")
            key, raw = args[index + 1], args[index + 2]
            try:
                intent.extras[key] = _EXTRA_PARSERS[arg](raw)
            except ValueError:
                raise IntentSyntaxError(f"Error: Invalid value for {arg} {key}: {raw}") from None
            index += 3
        elif arg == "--esn":
            intent.extras[args[index + 1]] = None
            index += 2
        elif arg in ("-n", "-a", "-c", "-d", "-p", "-f", "--user", "-t"):
            if index + 1 >= len(args):
                raise IntentSyntaxError(f"Error: No argument supplied for {arg}")
            value = args[index + 1]
            if arg == "-n":
                intent.component = value
            elif arg == "-a":
                intent.action = value
            elif arg == "-c":
                intent.categories.append(value)
            elif arg == "-d":
                intent.data = value
            elif arg == "-p":
                intent.package = value
            index += 2
        elif arg.startswith("-"):
            flags.add(arg)
            index += 1
        else:
            if "/" in arg:
                intent.component = arg
            else:
                intent.data = arg
            index += 1
    return intent, flags


def _expand_component(component: str) -> tuple[str, str]:
    package, _, activity = component.partition("/")
    if activity.startswith("."):
        activity = package + activity
    return package, activity


@command("am")
def am(ctx: CommandContext, args: list[str]) -> int:
    if not args:
        ctx.err("am: missing subcommand\n")
        return 1
    subcommand, rest = args[0], args[1:]
    if subcommand in ("start", "start-activity"):
        return _start(ctx, rest)
    if subcommand == "broadcast":
        return _broadcast(ctx, rest)
    if subcommand in ("force-stop", "kill"):
        names = [arg for arg in rest if not arg.startswith("-") and not arg.isdigit()]
        for name in names:
            if name in ctx.device.packages:
                ctx.device.runtime(name).stop()
                if ctx.device.foreground == name:
                    ctx.device.foreground = None
        return 0
    ctx.err(f"Error: Unknown command: {subcommand}\n")
    return 1


def _start(ctx: CommandContext, args: list[str]) -> int:
    try:
        intent, flags = parse_intent(args)
    except IntentSyntaxError as error:
        ctx.err(f"{error}\n")
        return 1
    device = ctx.device
    ctx.out(f"Starting: {intent.describe()}\n")
    package = intent.target_package
    record = device.packages.get(package) if package else None
    activity = _resolve_activity(intent, record)
    if record is None or activity is None:
        ctx.err(f"Error: Activity not started, unable to resolve {intent.describe()}\n")
        return 1
    if "-S" in flags:
        device.runtime(record.name).stop()
    runtime = device.runtime(record.name)
    launch_state = "WARM" if runtime.running else "COLD"
    runtime.start(intent)
    if not runtime.running:
        ctx.err(f"Error: Activity not started, {record.name} crashed on launch\n")
        return 1
    device.foreground = record.name
    device.log("ActivityTaskManager", f"START u0 {{{intent.describe()}}} from uid 2000", pid=600)
    if "-W" in flags:
        short = activity[len(record.name):] if activity.startswith(record.name + ".") else activity
        ctx.out(f"Status: ok\nLaunchState: {launch_state}\nActivity: {record.name}/{short}\n"
                "TotalTime: 180\nWaitTime: 185\nComplete\n")
    return 0


def _resolve_activity(intent: IntentSpec, record) -> str | None:
    if record is None:
        return None
    launcher = record.manifest.launcher_activity
    if intent.component:
        _, activity = _expand_component(intent.component)
        known = {launcher} | set(record.manifest.runtime.get("activities", []) or [])
        known = {name if not str(name).startswith(".") else record.name + name for name in known if name}
        return activity if activity in known else None
    if launcher and (LAUNCHER in intent.categories or intent.action in (None, "android.intent.action.MAIN")):
        return launcher if not launcher.startswith(".") else record.name + launcher
    return None


def _broadcast(ctx: CommandContext, args: list[str]) -> int:
    try:
        intent, _ = parse_intent(args)
    except IntentSyntaxError as error:
        ctx.err(f"{error}\n")
        return 1
    ctx.out(f"Broadcasting: {intent.describe()}\n")
    if intent.action and intent.action.startswith("android.intent.action.") and intent.target_package is None:
        ctx.err(f"Security exception: Permission Denial: not allowed to send broadcast "
                f"{intent.action} from pid=4000, uid=2000\n")
        return 255
    package = intent.target_package
    result, data = 0, None
    if package and package in ctx.device.packages:
        runtime = ctx.device.runtime(package)
        result, data = runtime.broadcast(intent)
    line = f"Broadcast completed: result={result}"
    if data is not None:
        line += f', data="{data}"'
    ctx.out(line + "\n")
    return 0


@command("monkey")
def monkey(ctx: CommandContext, args: list[str]) -> int:
    package = args[args.index("-p") + 1] if "-p" in args and args.index("-p") + 1 < len(args) else None
    record = ctx.device.packages.get(package) if package else None
    if record is None or not record.manifest.launcher_activity:
        ctx.err("** No activities found to run, monkey aborted.\n")
        return 251
    runtime = ctx.device.runtime(record.name)
    runtime.start(IntentSpec(action="android.intent.action.MAIN", package=record.name,
                             categories=[LAUNCHER]))
    ctx.device.foreground = record.name
    ctx.out("Events injected: 1\n## Network stats: elapsed time=20ms (0ms mobile, 0ms wifi, 20ms not connected)\n")
    return 0
