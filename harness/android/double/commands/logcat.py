"""``logcat`` on the simulated device: dump, follow, clear, formats and filters."""

from __future__ import annotations

import re

from harness.android.double.logbuffer import LEVELS, LogEntry, LogFormat, parse_since
from harness.android.double.shell import CommandContext, command

_LAYOUTS = ("brief", "time", "threadtime")
_MODIFIERS = ("epoch", "UTC", "year", "usec", "printable", "uid", "color")


class LogcatUsageError(ValueError):
    pass


class LogcatOptions:
    """Parsed ``logcat`` arguments."""

    def __init__(self, args: list[str]) -> None:
        self.dump = False
        self.clear = False
        self.layout = "threadtime"
        self.modifiers: set[str] = set()
        self.since: str | None = None
        self.follow_after_since = True
        self.regex: re.Pattern[str] | None = None
        self.pid: int | None = None
        self.max_count: int | None = None
        self.filters: list[tuple[str, str]] = []
        self._parse(args)

    def _parse(self, args: list[str]) -> None:
        index = 0
        while index < len(args):
            arg = args[index]
            value = args[index + 1] if index + 1 < len(args) else None
            if arg == "-d":
                self.dump = True
            elif arg in ("-c", "--clear"):
                self.clear = True
            elif arg == "-s":
                self.filters.append(("*", "S"))
            elif arg in ("-v", "-b", "-T", "-t", "-e", "-m", "--regex", "--max-count"):
                if value is None:
                    raise LogcatUsageError(f"logcat: option requires an argument -- '{arg}'")
                self._take(arg, value)
                index += 1
            elif arg.startswith("--pid="):
                self.pid = int(arg.split("=", 1)[1])
            elif ":" in arg and not arg.startswith("-"):
                tag, _, level = arg.rpartition(":")
                self.filters.append((tag, level.upper()))
            else:
                raise LogcatUsageError(f"logcat: unknown option '{arg}'")
            index += 1

    def _take(self, option: str, value: str) -> None:
        if option == "-v":
            if value in _LAYOUTS:
                self.layout = value
            elif value in _MODIFIERS:
                self.modifiers.add(value)
            else:
                raise LogcatUsageError(f"logcat: invalid output format '{value}'")
        elif option in ("-T", "-t"):
            self.since = value
            self.follow_after_since = option == "-T"
            if option == "-t":
                self.dump = True
        elif option in ("-e", "--regex"):
            self.regex = re.compile(value)
        elif option in ("-m", "--max-count"):
            self.max_count = int(value)

    @property
    def log_format(self) -> LogFormat:
        return LogFormat(self.layout, epoch="epoch" in self.modifiers, utc="UTC" in self.modifiers,
                         year="year" in self.modifiers)

    def selects(self, entry: LogEntry) -> bool:
        if self.pid is not None and entry.pid != self.pid:
            return False
        if self.regex is not None and not self.regex.search(entry.message):
            return False
        minimum = "V"
        for tag, level in self.filters:
            if tag in ("*", entry.tag):
                minimum = level
                if tag == entry.tag:
                    break
        return minimum != "S" and LEVELS.index(entry.level) >= LEVELS.index(minimum if minimum in LEVELS else "V")


@command("logcat")
def logcat(ctx: CommandContext, args: list[str]) -> int:
    try:
        options = LogcatOptions(args)
    except (LogcatUsageError, ValueError, re.error) as error:
        ctx.err(f"{error}\n")
        return 1
    device = ctx.device
    if options.clear:
        device.logbuffer.clear()
        return 0
    snapshot = device.logbuffer.snapshot()
    last_sequence = snapshot[-1].sequence if snapshot else device.logbuffer.last_sequence
    try:
        first = _initial(snapshot, options, device.now_ms(), device.timezone)
    except ValueError as error:
        ctx.err(f"logcat: {error}\n")
        return 1
    printed = 0
    for entry in first:
        if options.max_count is not None and printed >= options.max_count:
            return 0
        ctx.out(options.log_format.render(entry, device.timezone) + "\n")
        printed += 1
    if options.dump:
        return 0
    while not ctx.cancelled.is_set():
        for entry in device.logbuffer.wait_after(last_sequence, 0.2):
            last_sequence = entry.sequence
            if options.selects(entry):
                ctx.out(options.log_format.render(entry, device.timezone) + "\n")
                printed += 1
                if options.max_count is not None and printed >= options.max_count:
                    return 0
    return 0


def _initial(snapshot: list[LogEntry], options: LogcatOptions, now_ms: int, timezone: str) -> list[LogEntry]:
    selected = [entry for entry in snapshot if options.selects(entry)]
    if options.since is None:
        return selected
    since = parse_since(options.since, now_ms, timezone)
    if isinstance(since, int):
        return selected[-since:] if since else []
    return [entry for entry in selected if since(entry)]
