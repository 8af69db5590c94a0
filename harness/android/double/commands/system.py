"""System services' shell commands: settings, clock, radios, input and diagnostics."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from zoneinfo import ZoneInfo

from harness.android.double import ui_actions
from harness.android.double.commands.packages import describe_package, drop_user_option
from harness.android.double.filesystem import ROOT
from harness.android.double.logbuffer import LogFormat
from harness.android.double.shell import CommandContext, command

BUGREPORT_DIR = "/data/user_de/0/com.android.shell/files/bugreports"


# settings ----------------------------------------------------------------------------------
@command("settings")
def settings(ctx: CommandContext, args: list[str]) -> int:
    args = drop_user_option(args)
    if len(args) < 2 or args[1] not in ("global", "system", "secure"):
        ctx.err("Invalid arguments: settings get|put|delete|list NAMESPACE [KEY [VALUE]]\n")
        return 1
    verb, namespace, rest = args[0], args[1], args[2:]
    table = ctx.device.settings[namespace]
    with ctx.device.lock:
        if verb == "get" and len(rest) == 1:
            ctx.out(table.get(rest[0], "null") + "\n")
        elif verb == "put" and len(rest) >= 2:
            table[rest[0]] = rest[1]
        elif verb == "delete" and len(rest) == 1:
            ctx.out(f"Deleted {1 if table.pop(rest[0], None) is not None else 0} rows\n")
        elif verb == "list" and not rest:
            for key in sorted(table):
                ctx.out(f"{key}={table[key]}\n")
        else:
            ctx.err(f"Invalid arguments for settings {verb}\n")
            return 1
    return 0


# Clock ----------------------------------------------------------------------------------
@command("date")
def date(ctx: CommandContext, args: list[str]) -> int:
    utc = "-u" in args
    rest = [arg for arg in args if arg != "-u"]
    device = ctx.device
    zone = ZoneInfo("UTC") if utc else ZoneInfo(device.timezone)
    if rest and not rest[0].startswith("+"):
        return _set_date(ctx, rest[0], zone)
    moment = dt.datetime.fromtimestamp(device.now_ms() / 1000, tz=zone)
    fmt = rest[0][1:] if rest else "%a %b %e %H:%M:%S %Z %Y"
    fmt = fmt.replace("%s", str(device.now_ms() // 1000)).replace("%N", f"{device.now_ms() % 1000:03d}000000")
    ctx.out(moment.strftime(fmt) + "\n")
    return 0


def _set_date(ctx: CommandContext, value: str, zone: ZoneInfo) -> int:
    if not ctx.identity.is_root:
        ctx.err("date: cannot set date: Operation not permitted\n")
        return 1
    try:
        if value.startswith("@"):
            epoch_ms = round(float(value[1:]) * 1000)
        else:
            epoch_ms = _parse_toybox_date(value, zone)
    except ValueError:
        ctx.err(f"date: bad date '{value}'\n")
        return 1
    ctx.device.set_time_ms(epoch_ms)
    ctx.out(dt.datetime.fromtimestamp(ctx.device.now_ms() / 1000, tz=zone).strftime("%a %b %e %H:%M:%S %Z %Y") + "\n")
    return 0


def _parse_toybox_date(value: str, zone: ZoneInfo) -> int:
    """Parse MMDDhhmm[[CC]YY][.ss]."""
    main, _, seconds = value.partition(".")
    if not main.isdigit() or len(main) not in (8, 10, 12):
        raise ValueError(value)
    month, day, hour, minute = (int(main[i:i + 2]) for i in range(0, 8, 2))
    year = dt.datetime.now(zone).year
    if len(main) == 10:
        year = 2000 + int(main[8:10])
    elif len(main) == 12:
        year = int(main[8:12])
    moment = dt.datetime(year, month, day, hour, minute, int(seconds or 0), tzinfo=zone)
    return round(moment.timestamp() * 1000)


# cmd -------------------------------------------------------------------------------------
@command("cmd")
def cmd(ctx: CommandContext, args: list[str]) -> int:
    if not args:
        ctx.err("cmd: no service specified\n")
        return 1
    service, rest = args[0], args[1:]
    handler = _CMD_SERVICES.get(service)
    if handler is None:
        ctx.err(f"cmd: Can't find service: {service}\n")
        return 20
    return handler(ctx, rest)


def _cmd_alarm(ctx: CommandContext, args: list[str]) -> int:
    if len(args) != 2 or args[0] not in ("set-time", "set-timezone"):
        ctx.err("Unknown command; alarm supports set-time MS and set-timezone TZ\n")
        return 255
    permission = "SET_TIME" if args[0] == "set-time" else "SET_TIME_ZONE"
    if not ctx.identity.is_root:
        ctx.err(f"Security exception: Neither user {ctx.identity.uid} nor current process has "
                f"android.permission.{permission}.\n")
        return 255
    if args[0] == "set-time":
        try:
            ctx.device.set_time_ms(int(args[1]))
        except ValueError:
            ctx.err(f"Error: invalid time: {args[1]}\n")
            return 255
        return 0
    try:
        ctx.device.set_timezone(args[1])
    except ValueError as error:
        ctx.err(f"Exception occurred while executing 'set-timezone':\njava.lang.IllegalArgumentException: {error}\n")
        return 255
    return 0


def _cmd_package(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] == ["resolve-activity"]:
        names = [arg for arg in args[1:] if not arg.startswith("-")
                 and not arg.startswith("android.intent.category.")]
        record = ctx.device.packages.get(names[-1]) if names else None
        activity = record.manifest.launcher_activity if record else None
        if record is None or not activity:
            ctx.out("No activity found\n")
            return 0
        full = record.name + activity if activity.startswith(".") else activity
        ctx.out("priority=0 preferredOrder=0 match=0x108000 specialIndex=0 isDefault=false\n"
                f"{record.name}/{full}\n")
        return 0
    return ctx.shell.execute(ctx, ["pm", *args])


def _cmd_wifi(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] == ["set-wifi-enabled"] and len(args) == 2 and args[1] in ("enabled", "disabled"):
        ctx.device.set_radio(wifi=args[1] == "enabled")
        return 0
    if args[:1] == ["status"]:
        ctx.out(f"Wifi is {'enabled' if ctx.device.radio['wifi'] else 'disabled'}\n")
        return 0
    ctx.err("wifi: the double supports set-wifi-enabled enabled|disabled and status\n")
    return 255


def _cmd_connectivity(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] != ["airplane-mode"]:
        ctx.err("connectivity: the double supports airplane-mode [enable|disable]\n")
        return 255
    if len(args) == 1:
        ctx.out(("enabled" if ctx.device.radio["airplane"] else "disabled") + "\n")
        return 0
    if args[1] not in ("enable", "disable"):
        ctx.err(f"Unsupported argument: {args[1]}\n")
        return 255
    ctx.device.set_radio(airplane=args[1] == "enable")
    return 0


def _cmd_jobscheduler(ctx: CommandContext, args: list[str]) -> int:
    names = [arg for arg in args[1:] if not arg.startswith("-")]
    if args[:1] != ["run"] or len(names) != 2:
        ctx.err("jobscheduler: the double supports run [-f] PACKAGE JOB_ID\n")
        return 255
    package, job_id = names
    if package not in ctx.device.packages:
        ctx.out(f"Package not found: {package}\n")
        return 255
    runtime = ctx.device.runtime(package)
    run_job = getattr(runtime, "run_job", None)
    if run_job is None or not run_job(job_id):
        ctx.out(f"Could not find job {job_id} in package {package}\n")
        return 255
    ctx.out(f"Running job{' [FORCED]' if '-f' in args else ''}\n")
    return 0


_CMD_SERVICES = {
    "alarm": _cmd_alarm, "package": _cmd_package, "wifi": _cmd_wifi,
    "connectivity": _cmd_connectivity, "jobscheduler": _cmd_jobscheduler,
}


@command("svc")
def svc(ctx: CommandContext, args: list[str]) -> int:
    if len(args) != 2 or args[0] not in ("wifi", "data") or args[1] not in ("enable", "disable"):
        ctx.err("svc: the double supports svc wifi|data enable|disable\n")
        return 1
    enabled = args[1] == "enable"
    if args[0] == "wifi":
        ctx.device.set_radio(wifi=enabled)
    else:
        ctx.device.set_radio(data=enabled)
    return 0


# Screen and input ------------------------------------------------------------------------
@command("input")
def input_command(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] in (["touchscreen"], ["keyboard"]):
        args = args[1:]
    if args[:1] == ["tap"] and len(args) == 3:
        ui_actions.tap(ctx.device, float(args[1]), float(args[2]))
        return 0
    if args[:1] == ["text"] and len(args) == 2:
        ui_actions.type_text(ctx.device, args[1])
        return 0
    if args[:1] == ["keyevent"] and len(args) >= 2:
        key = args[-1]
        ui_actions.press_key(ctx.device, int(key) if key.isdigit() else key)
        return 0
    if args[:1] == ["swipe"]:
        return 0
    ctx.err("Error: Unknown command or invalid arguments for input\n")
    return 1


@command("screencap")
def screencap(ctx: CommandContext, args: list[str]) -> int:
    png = ui_actions.screenshot_png(ctx.device)
    targets = [arg for arg in args if not arg.startswith("-")]
    if targets:
        ctx.device.fs.write_bytes(ctx.identity, ctx.path(targets[0]), png)
    elif "-p" in args:
        ctx.out(png)
    else:
        ctx.err("screencap: the double writes PNG only; pass -p\n")
        return 1
    return 0


@command("uiautomator")
def uiautomator(ctx: CommandContext, args: list[str]) -> int:
    if args[:1] != ["dump"]:
        ctx.err("uiautomator: the double supports dump [FILE]\n")
        return 1
    if ctx.device.listeners.get("tcp:9008") is not None:
        # Only one UiAutomation connection may exist, and the uiautomator2 server has it.
        ctx.err("java.lang.IllegalStateException: UiAutomationService "
                "android.accessibilityservice.IAccessibilityServiceClient already registered!\n")
        return 1
    targets = [arg for arg in args[1:] if not arg.startswith("-")]
    target = ctx.path(targets[0] if targets else "/sdcard/window_dump.xml")
    ctx.device.fs.write_bytes(ctx.identity, target, ctx.device.foreground_screen().to_xml().encode())
    ctx.out(f"UI hierchary dumped to: {target}\n")  # sic: Android's own spelling
    return 0


@command("dumpsys")
def dumpsys(ctx: CommandContext, args: list[str]) -> int:
    service = args[0] if args else ""
    device = ctx.device
    if service == "window":
        screen = device.foreground_screen()
        flags = "fl=LAYOUT_IN_SCREEN" + (" SECURE" if screen.secure else "")
        ctx.out(f"  mCurrentFocus=Window{{1c8e4a5 u0 {screen.package}/{screen.activity}}}\n"
                f"  mFocusedApp=ActivityRecord{{7f3 u0 {screen.package}/{screen.activity} t12}}\n"
                f"    mAttrs={{(0,0)(fillxfill) ty=BASE_APPLICATION {flags}}}\n")
    elif service == "package" and len(args) > 1:
        record = device.packages.get(args[1])
        ctx.out(describe_package(record) if record else "Unable to find package\n")
    elif service == "activity":
        screen = device.foreground_screen()
        pid = device.pid_of(screen.package) or 0
        ctx.out(f"  ACTIVITY {screen.package}/{screen.activity} 7f3 pid={pid}\n")
    elif service == "display":
        ctx.out("  mDisplayInfo=DisplayInfo{real 1080 x 2340, orientation=0}\n")
    elif service == "battery":
        ctx.out("Current Battery Service state:\n  AC powered: true\n  level: 100\n  scale: 100\n")
    else:
        ctx.err(f"Can't find service: {service}\n")
        return 1
    return 0


# Bug reports ------------------------------------------------------------------------------
@command("bugreportz")
def bugreportz(ctx: CommandContext, args: list[str]) -> int:
    device = ctx.device
    stamp = dt.datetime.fromtimestamp(device.now_ms() / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%d-%H-%M-%S")
    path = f"{BUGREPORT_DIR}/bugreport-{device.serial}-{stamp}.zip"
    if "-p" in args:
        ctx.out("BEGIN:" + path + "\nPROGRESS:50/100\n")
    log_format = LogFormat()
    text = io.StringIO()
    text.write("== dumpstate (simulated by the adb double)\n\n------ SYSTEM PROPERTIES ------\n")
    for key in sorted(device.properties):
        text.write(f"[{key}]: [{device.properties[key]}]\n")
    text.write("\n------ PACKAGES ------\n")
    for record in device.packages.values():
        text.write(describe_package(record))
    text.write("\n------ SYSTEM LOG (logcat -d) ------\n")
    for entry in device.logbuffer.snapshot():
        text.write(log_format.render(entry, device.timezone) + "\n")
    buffer = io.BytesIO()
    name = f"bugreport-{device.serial}-{stamp}.txt"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("main_entry.txt", name)
        archive.writestr(name, text.getvalue())
    device.fs.write_bytes(ROOT, path, buffer.getvalue())
    ctx.out(f"OK:{path}\n")
    return 0
