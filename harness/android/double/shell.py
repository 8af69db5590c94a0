"""A small ``sh`` for the simulated device: the command lines adb clients actually send.

It covers what adbutils, uiautomator2 and the harness send: lists joined with ``;``, ``&&``
and ``||``, pipes, ``>``/``>>``/``2>``/``2>&1`` redirections, single and double quotes,
``$VAR``/``${VAR}``/``$?`` expansion and ``NAME=value`` prefixes (``CLASSPATH=... app_process``).
Each command name maps to a handler in :data:`COMMANDS`; an unknown name fails with exit
status 127 and the message Android's mksh prints.
"""

from __future__ import annotations

import dataclasses
import io
import posixpath
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from harness.android.double.filesystem import FileSystemError, Identity, normalize

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

_OPERATORS = ("2>&1", "&&", "||", ">>", "2>", "&>", ";", "|", ">", "<")


class Sink(Protocol):
    def write(self, data: bytes) -> object: ...


class DiscardSink:
    def write(self, data: bytes) -> int:
        return len(data)


@dataclasses.dataclass
class CommandContext:
    """Everything a command handler may use: the device, who runs it, and its streams."""

    device: SimulatedDevice
    identity: Identity
    cwd: str
    env: dict[str, str]
    stdin: bytes
    stdout: Sink
    stderr: Sink
    cancelled: threading.Event
    shell: ShellInterpreter

    def out(self, text: str | bytes) -> None:
        self.stdout.write(text.encode("utf-8") if isinstance(text, str) else text)

    def err(self, text: str | bytes) -> None:
        self.stderr.write(text.encode("utf-8") if isinstance(text, str) else text)

    def path(self, value: str) -> str:
        return normalize(value, self.cwd)

    def fail(self, name: str, error: FileSystemError, status: int = 1) -> int:
        self.err(f"{name}: {error}\n")
        return status


Handler = Callable[[CommandContext, list[str]], int]
COMMANDS: dict[str, Handler] = {}


def command(*names: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more command names."""

    def register(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = handler
        return handler

    return register


class ShellSyntaxError(ValueError):
    pass


@dataclasses.dataclass
class SimpleCommand:
    argv: list[str]
    assignments: dict[str, str]
    redirects: list[tuple[str, str]]  # (operator, target)


# A word as parsed: (text, expand) parts, so quoting decides where "$" expands.
Word = list[tuple[str, bool]]


class ParsedCommand:
    """A command whose words are expanded just before it runs, so ``$?`` sees the last status."""

    def __init__(self, words: list[Word], redirects: list[tuple[str, Word]]) -> None:
        self.words = words
        self.redirects = redirects

    def expand(self, env: dict[str, str], device: SimulatedDevice) -> SimpleCommand:
        expanded = [_expand(word, env, device) for word in self.words]
        assignments: dict[str, str] = {}
        while expanded and _is_assignment(self.words[len(assignments)]):
            name, _, value = expanded.pop(0).partition("=")
            assignments[name] = value
        redirects = [(operator, _expand(target, env, device)) for operator, target in self.redirects]
        return SimpleCommand(expanded, assignments, redirects)


@dataclasses.dataclass
class Pipeline:
    commands: list[ParsedCommand]
    connector: str  # how it joins the previous pipeline: ";", "&&" or "||"


class ShellInterpreter:
    """Parses and runs one command line on a device as a given identity."""

    def __init__(self, device: SimulatedDevice) -> None:
        self.device = device

    def run(self, line: str, *, identity: Identity, stdout: Sink, stderr: Sink,
            cancelled: threading.Event, cwd: str = "/", stdin: bytes = b"",
            env: dict[str, str] | None = None) -> int:
        """Run ``line`` and return the exit status of its last pipeline."""
        env = dict(env or {})
        env.setdefault("?", "0")
        try:
            pipelines = self._parse(line)
        except ShellSyntaxError as error:
            stderr.write(f"/system/bin/sh: syntax error: {error}\n".encode())
            return 2
        status = 0
        for pipeline in pipelines:
            if pipeline.connector == "&&" and status != 0:
                continue
            if pipeline.connector == "||" and status == 0:
                continue
            status = self._run_pipeline(pipeline, identity, stdout, stderr, cancelled, cwd, stdin, env)
            env["?"] = str(status)
            if cancelled.is_set():
                break
        return status

    # Parsing ------------------------------------------------------------------------------
    def _parse(self, line: str) -> list[Pipeline]:
        tokens = _tokenize(line)
        pipelines: list[Pipeline] = []
        current: list[ParsedCommand] = []
        words: list[Word] = []
        redirects: list[tuple[str, Word]] = []
        connector = ";"
        pending_redirect: str | None = None

        def finish_command() -> None:
            nonlocal words, redirects
            if not words and not redirects:
                raise ShellSyntaxError("empty command")
            current.append(ParsedCommand(words, redirects))
            words, redirects = [], []

        for kind, value in tokens:
            if kind == "word":
                if pending_redirect:
                    redirects.append((pending_redirect, value))  # type: ignore[arg-type]
                    pending_redirect = None
                else:
                    words.append(value)  # type: ignore[arg-type]
                continue
            if pending_redirect:
                raise ShellSyntaxError(f"missing target after {pending_redirect}")
            if value == "2>&1":
                redirects.append(("2>&1", []))
            elif value in (">", ">>", "2>", "&>", "<"):
                pending_redirect = value
            elif value == "|":
                finish_command()
            else:  # ";", "&&", "||"
                if words or redirects:
                    finish_command()
                if current:
                    pipelines.append(Pipeline(current, connector))
                elif value != ";":
                    raise ShellSyntaxError(f"unexpected {value}")
                current, connector = [], value
        if pending_redirect:
            raise ShellSyntaxError(f"missing target after {pending_redirect}")
        if words or redirects:
            finish_command()
        if current:
            pipelines.append(Pipeline(current, connector))
        return pipelines

    # Execution ----------------------------------------------------------------------------
    def _run_pipeline(self, pipeline: Pipeline, identity: Identity, stdout: Sink, stderr: Sink,
                      cancelled: threading.Event, cwd: str, stdin: bytes, env: dict[str, str]) -> int:
        data = stdin
        status = 0
        for position, parsed in enumerate(pipeline.commands):
            last = position == len(pipeline.commands) - 1
            simple = parsed.expand(env, self.device)
            sink: Sink = stdout if last else io.BytesIO()
            status = self._run_simple(simple, identity, sink, stderr, cancelled, cwd, data, env)
            if not last:
                data = sink.getvalue()  # type: ignore[attr-defined]
        return status

    def _run_simple(self, simple: SimpleCommand, identity: Identity, stdout: Sink, stderr: Sink,
                    cancelled: threading.Event, cwd: str, stdin: bytes, env: dict[str, str]) -> int:
        out_target: tuple[str, str] | None = None
        err_target: tuple[str, str] | None = None
        err_to_out = False
        for operator, target in simple.redirects:
            if operator in (">", ">>"):
                out_target = (operator, target)
            elif operator == "2>":
                err_target = (">", target)
            elif operator == "&>":
                out_target = (">", target)
                err_to_out = True
            elif operator == "2>&1":
                err_to_out = True
            elif operator == "<":
                try:
                    stdin = self.device.fs.read_bytes(identity, normalize(target, cwd))
                except FileSystemError as error:
                    stderr.write(f"/system/bin/sh: {error}\n".encode())
                    return 1
        out_buffer = io.BytesIO() if out_target else None
        err_buffer = io.BytesIO() if err_target else None
        command_out: Sink = out_buffer if out_buffer is not None else stdout
        command_err: Sink = command_out if err_to_out else (err_buffer if err_buffer is not None else stderr)
        if not simple.argv:
            env.update(simple.assignments)
            status = 0
        else:
            context = CommandContext(self.device, identity, cwd, {**env, **simple.assignments},
                                     stdin, command_out, command_err, cancelled, self)
            status = self.execute(context, simple.argv)
        for target, buffer in ((out_target, out_buffer), (err_target, err_buffer)):
            if target is None or buffer is None:
                continue
            failure = self._write_redirect(identity, cwd, target, buffer.getvalue())
            if failure:
                stderr.write(failure.encode())
                status = 1
        return status

    def _write_redirect(self, identity: Identity, cwd: str, target: tuple[str, str], data: bytes) -> str | None:
        operator, path = target
        if path == "/dev/null":
            return None
        try:
            self.device.fs.write_bytes(identity, normalize(path, cwd), data, append=operator == ">>")
        except FileSystemError as error:
            return f"/system/bin/sh: can't create {error}\n"
        return None

    def execute(self, context: CommandContext, argv: list[str]) -> int:
        """Run one already-expanded command in ``context``."""
        name = posixpath.basename(argv[0])
        handler = COMMANDS.get(name)
        if handler is None:
            context.err(f"/system/bin/sh: {argv[0]}: inaccessible or not found\n")
            return 127
        return handler(context, argv[1:])


def _is_assignment(word: Word) -> bool:
    if not word or not word[0][1]:
        return False
    head = word[0][0]
    name, equals, _ = head.partition("=")
    return bool(equals) and name.replace("_", "a").isalnum() and not name[0].isdigit()


def _expand(word: Word, env: dict[str, str], device: SimulatedDevice) -> str:
    result = []
    for text, expand in word:
        result.append(_expand_variables(text, env, device) if expand else text)
    return "".join(result)


def _expand_variables(text: str, env: dict[str, str], device: SimulatedDevice) -> str:
    output = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "$" or index + 1 >= len(text):
            output.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "?":
            output.append(env.get("?", "0"))
            index += 2
            continue
        if following == "{":
            end = text.find("}", index)
            if end == -1:
                output.append(char)
                index += 1
                continue
            name, index = text[index + 2:end], end + 1
        else:
            end = index + 1
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            if end == index + 1:
                output.append(char)
                index += 1
                continue
            name, index = text[index + 1:end], end
        output.append(_variable(name, env, device))
    return "".join(output)


def _variable(name: str, env: dict[str, str], device: SimulatedDevice) -> str:
    if name == "EPOCHREALTIME":  # mksh: seconds since the epoch with microseconds
        now_ms = device.now_ms()
        return f"{now_ms // 1000}.{now_ms % 1000:03d}000"
    return env.get(name, "")


def _tokenize(line: str) -> list[tuple[str, object]]:
    """Split a command line into ("word", parts) and ("op", text) tokens."""
    tokens: list[tuple[str, object]] = []
    parts: list[tuple[str, bool]] = []
    buffer: list[str] = []
    in_word = False
    index = 0

    def flush_buffer(expand: bool = True) -> None:
        if buffer:
            parts.append(("".join(buffer), expand))
            buffer.clear()

    def end_word() -> None:
        nonlocal parts, in_word
        flush_buffer()
        if in_word:
            tokens.append(("word", parts))
        parts, in_word = [], False

    while index < len(line):
        char = line[index]
        if char in " \t\n":
            end_word()
            index += 1
            continue
        operator = next((op for op in _OPERATORS if line.startswith(op, index)), None)
        # "2>" is an operator only at the start of a word ("echo a2>b" writes "a2" to b).
        if operator and not (operator.startswith("2") and in_word):
            end_word()
            tokens.append(("op", operator))
            index += len(operator)
            continue
        in_word = True
        if char == "\\" and index + 1 < len(line):
            buffer.append(line[index + 1])
            index += 2
        elif char == "'":
            end = line.find("'", index + 1)
            if end == -1:
                raise ShellSyntaxError("unterminated quoted string")
            flush_buffer()
            parts.append((line[index + 1:end], False))
            index = end + 1
        elif char == '"':
            index = _read_double_quoted(line, index, parts, flush_buffer)
        else:
            buffer.append(char)
            index += 1
    end_word()
    return tokens


def _read_double_quoted(line: str, start: int, parts: Word,
                        flush_buffer: Callable[[], None]) -> int:
    """Read a "..." string starting at ``start``; ``$`` expands inside it unless escaped."""
    flush_buffer()
    chunk: list[str] = []
    index = start + 1
    while index < len(line):
        char = line[index]
        if char == '"':
            parts.append(("".join(chunk), True))
            return index + 1
        if char == "\\" and index + 1 < len(line) and line[index + 1] in '"\\$`':
            if line[index + 1] == "$":
                parts.append(("".join(chunk), True))
                parts.append(("$", False))
                chunk = []
            else:
                chunk.append(line[index + 1])
            index += 2
            continue
        chunk.append(char)
        index += 1
    raise ShellSyntaxError("unterminated quoted string")
