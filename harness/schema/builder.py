"""Turn the schema table of ``definition.py`` into protobuf message classes at import time.

The table is a small line-based language, so no ``protoc`` run and no generated code is needed:

``message Name`` starts a message; a dotted name (``message SendStatus.Sent``) nests it in a
message declared earlier. ``enum Name: A=0 B=1`` declares an enum inside the current message
(or at file level before the first message). A field line is ``NUMBER NAME [LABEL] TYPE
[oneof GROUP] [unpacked]`` where LABEL is ``optional`` (proto3 explicit presence) or ``repeated``, and TYPE is
a scalar, an enum, a message name or ``opaque``. ``opaque`` is a sub-message this schema does not
model: it is carried as bytes, so a round trip keeps it byte for byte. A singular ``opaque`` field
always has explicit presence, so an empty sub-message survives re-serialisation. ``unpacked``
writes a repeated scalar as one tagged value per element instead of the proto3 packed form.
The order of field lines is the order ``harness.schema.encoding.serialize`` writes them in.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

FieldType = descriptor_pb2.FieldDescriptorProto

SCALAR_TYPES = {
    "uint64": FieldType.TYPE_UINT64,
    "uint32": FieldType.TYPE_UINT32,
    "int64": FieldType.TYPE_INT64,
    "int32": FieldType.TYPE_INT32,
    "bool": FieldType.TYPE_BOOL,
    "string": FieldType.TYPE_STRING,
    "bytes": FieldType.TYPE_BYTES,
    "opaque": FieldType.TYPE_BYTES,
    "fixed32": FieldType.TYPE_FIXED32,
    "fixed64": FieldType.TYPE_FIXED64,
    "float": FieldType.TYPE_FLOAT,
    "double": FieldType.TYPE_DOUBLE,
}


class SchemaDefinitionError(ValueError):
    """The schema table has a line this builder cannot read (a bug in the table)."""


@dataclasses.dataclass
class _FieldLine:
    number: int
    name: str
    label: str  # "", "optional" or "repeated"
    type_name: str
    oneof: str | None
    unpacked: bool
    line_number: int


@dataclasses.dataclass
class _MessageDraft:
    full_name: str
    proto: descriptor_pb2.DescriptorProto
    fields: list[_FieldLine] = dataclasses.field(default_factory=list)


def _parse_enum(text: str, line_number: int) -> descriptor_pb2.EnumDescriptorProto:
    try:
        head, values = text.split(":", 1)
        enum = descriptor_pb2.EnumDescriptorProto(name=head.split()[1])
        for item in values.split():
            name, number = item.split("=")
            enum.value.add(name=name, number=int(number))
    except (ValueError, IndexError):
        raise SchemaDefinitionError(f"schema line {line_number}: invalid enum {text!r}") from None
    return enum


def _parse_field(text: str, line_number: int) -> _FieldLine:
    words = text.split()
    unpacked = words[-1] == "unpacked"
    if unpacked:
        words = words[:-1]
    oneof = None
    if len(words) >= 2 and words[-2] == "oneof":
        oneof = words[-1]
        words = words[:-2]
    label = ""
    if len(words) == 4 and words[2] in ("optional", "repeated"):
        label = words[2]
        words = [words[0], words[1], words[3]]
    if len(words) != 3 or not words[0].isdigit():
        raise SchemaDefinitionError(f"schema line {line_number}: invalid field {text!r}")
    return _FieldLine(int(words[0]), words[1], label, words[2], oneof, unpacked, line_number)


class _Builder:
    def __init__(self, package: str):
        self.package = package
        self.file = descriptor_pb2.FileDescriptorProto(
            name=f"{package.replace('.', '/')}.proto", package=package, syntax="proto3"
        )
        self.messages: dict[str, _MessageDraft] = {}
        self.enums: set[str] = set()

    def add_message(self, name: str, line_number: int) -> _MessageDraft:
        parent_name, _, short_name = name.rpartition(".")
        if parent_name:
            parent = self.messages.get(parent_name)
            if parent is None:
                raise SchemaDefinitionError(
                    f"schema line {line_number}: parent message {parent_name!r} not declared yet"
                )
            proto = parent.proto.nested_type.add(name=short_name)
        else:
            proto = self.file.message_type.add(name=short_name)
        draft = _MessageDraft(name, proto)
        self.messages[name] = draft
        return draft

    def add_enum(self, scope: _MessageDraft | None, text: str, line_number: int) -> None:
        enum = _parse_enum(text, line_number)
        if scope is None:
            self.file.enum_type.append(enum)
            self.enums.add(enum.name)
        else:
            scope.proto.enum_type.append(enum)
            self.enums.add(f"{scope.full_name}.{enum.name}")

    def resolve(self, scope: str, type_name: str, line_number: int) -> tuple[int, str]:
        """Find a message or enum by name, looking outward from the current message."""
        parts = scope.split(".")
        for depth in range(len(parts), -1, -1):
            candidate = ".".join(parts[:depth] + [type_name])
            if candidate in self.messages:
                return FieldType.TYPE_MESSAGE, f".{self.package}.{candidate}"
            if candidate in self.enums:
                return FieldType.TYPE_ENUM, f".{self.package}.{candidate}"
        raise SchemaDefinitionError(f"schema line {line_number}: unknown type {type_name!r}")

    def finish_message(self, draft: _MessageDraft) -> None:
        oneof_index: dict[str, int] = {}
        for line in draft.fields:
            if line.oneof and line.oneof not in oneof_index:
                oneof_index[line.oneof] = len(oneof_index)
                draft.proto.oneof_decl.add(name=line.oneof)
        for line in draft.fields:
            field = draft.proto.field.add(name=line.name, number=line.number)
            field.label = (
                FieldType.LABEL_REPEATED if line.label == "repeated" else FieldType.LABEL_OPTIONAL
            )
            if line.type_name in SCALAR_TYPES:
                field.type = SCALAR_TYPES[line.type_name]
            else:
                field.type, field.type_name = self.resolve(
                    draft.full_name, line.type_name, line.line_number
                )
            if line.unpacked:
                field.options.packed = False
            if line.oneof:
                field.oneof_index = oneof_index[line.oneof]
            elif field.type != FieldType.TYPE_MESSAGE and (
                line.label == "optional" or (line.type_name == "opaque" and not line.label)
            ):
                # proto3 `optional`: a synthetic one-member oneof, declared after the real ones.
                # Message fields need none because they always have presence.
                field.proto3_optional = True
                field.oneof_index = len(draft.proto.oneof_decl)
                draft.proto.oneof_decl.add(name=f"_{line.name}")


def build_file_descriptor(package: str, table: str) -> descriptor_pb2.FileDescriptorProto:
    """Parse the schema table into a FileDescriptorProto."""
    builder = _Builder(package)
    current: _MessageDraft | None = None
    for line_number, raw in enumerate(table.splitlines(), start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        if text.startswith("message "):
            current = builder.add_message(text.split()[1], line_number)
        elif text.startswith("enum "):
            builder.add_enum(current, text, line_number)
        elif current is None:
            raise SchemaDefinitionError(f"schema line {line_number}: field outside a message")
        else:
            current.fields.append(_parse_field(text, line_number))
    for draft in builder.messages.values():
        builder.finish_message(draft)
    return builder.file


def build_message_classes(package: str, table: str) -> dict[str, Any]:
    """Build the message classes of the table; keys are the (dotted) message names."""
    file_proto = build_file_descriptor(package, table)
    pool = descriptor_pool.DescriptorPool()
    file_descriptor = pool.Add(file_proto)
    del file_descriptor
    classes: dict[str, Any] = {}

    def collect(prefix: str, descriptor: Any) -> None:
        classes[prefix] = message_factory.GetMessageClass(descriptor)
        for nested in descriptor.nested_types:
            collect(f"{prefix}.{nested.name}", nested)

    for proto in file_proto.message_type:
        collect(proto.name, pool.FindMessageTypeByName(f"{package}.{proto.name}"))
    return classes
