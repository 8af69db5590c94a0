"""Serialise schema messages in the field order Signal's own encoders use.

The protobuf runtime writes known fields by ascending field number. Signal's clients and the
Signal-Message-Backup-Tests generator (Square Wire 4 encoders) write them in declaration order
instead, with the members of real oneofs after all other fields, and unknown fields last. The
two orders differ for, among others, a Contact with a registration (field 7 comes last), a
ChatItem with pin details (21 before the direction and body) and a group snapshot (11 after 2).
``serialize`` follows the Wire order given by the table in ``definition.py``, so a frame parsed
with this schema re-serialises to the bytes it came from. It is plain Python: use it where byte
identity matters, and ``SerializeToString()`` where speed does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.unknown_fields import UnknownFieldSet

from harness.frames import encode_varint

_VARINT_TYPES = {
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_BOOL,
    FieldDescriptor.TYPE_ENUM,
}
_FIXED_FORMATS = {
    FieldDescriptor.TYPE_FIXED32: ("<I", 5),
    FieldDescriptor.TYPE_FIXED64: ("<Q", 1),
    FieldDescriptor.TYPE_FLOAT: ("<f", 5),
    FieldDescriptor.TYPE_DOUBLE: ("<d", 1),
}
_WIRE_VARINT, _WIRE_FIXED64, _WIRE_LENGTH, _WIRE_START_GROUP, _WIRE_END_GROUP, _WIRE_FIXED32 = range(6)


def _varint_of(value: int) -> bytes:
    # Negative int32/int64/enum values are written as 64-bit two's complement.
    return encode_varint(value + (1 << 64) if value < 0 else value)


def _length_delimited(data: bytes) -> bytes:
    return encode_varint(len(data)) + data


class _FieldPlan:
    __slots__ = ("name", "number", "repeated", "packed", "presence", "encode_value", "wire_type")

    def __init__(self, field: FieldDescriptor):
        self.name = field.name
        self.number = field.number
        self.repeated = field.is_repeated
        self.packed = field.is_packed
        self.presence = field.has_presence
        self.encode_value, self.wire_type = _value_encoder(field)

    def tag(self, wire_type: int) -> bytes:
        return encode_varint(self.number << 3 | wire_type)


def _value_encoder(field: FieldDescriptor) -> tuple[Callable[[Any], bytes], int]:
    if field.type in _VARINT_TYPES:
        return _varint_of, _WIRE_VARINT
    if field.type in _FIXED_FORMATS:
        fmt, wire_type = _FIXED_FORMATS[field.type]
        packer = struct.Struct(fmt).pack
        return packer, wire_type
    if field.type == FieldDescriptor.TYPE_STRING:
        return lambda value: _length_delimited(value.encode("utf-8")), _WIRE_LENGTH
    if field.type == FieldDescriptor.TYPE_BYTES:
        return _length_delimited, _WIRE_LENGTH
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return lambda value: _length_delimited(serialize(value)), _WIRE_LENGTH
    raise TypeError(f"field {field.full_name}: type {field.type} is not supported")


_plans: dict[str, list[_FieldPlan]] = {}


def _plan(descriptor: Any) -> list[_FieldPlan]:
    plan = _plans.get(descriptor.full_name)
    if plan is None:
        # Table order is declaration order; real oneofs (not proto3 `optional`) go last.
        fields = list(descriptor.fields)
        in_oneof = [
            f for f in fields if f.containing_oneof is not None and not f.containing_oneof.name.startswith("_")
        ]
        regular = [f for f in fields if f not in in_oneof]
        plan = [_FieldPlan(field) for field in regular + in_oneof]
        _plans[descriptor.full_name] = plan
    return plan


def _encode_unknown(fields: UnknownFieldSet) -> bytes:
    out = bytearray()
    for field in fields:
        out += encode_varint(field.field_number << 3 | field.wire_type)
        if field.wire_type == _WIRE_VARINT:
            out += encode_varint(field.data)
        elif field.wire_type == _WIRE_FIXED64:
            out += struct.pack("<Q", field.data)
        elif field.wire_type == _WIRE_FIXED32:
            out += struct.pack("<I", field.data)
        elif field.wire_type == _WIRE_LENGTH:
            out += _length_delimited(field.data)
        elif field.wire_type == _WIRE_START_GROUP:
            out += _encode_unknown(field.data)
            out += encode_varint(field.field_number << 3 | _WIRE_END_GROUP)
    return bytes(out)


def serialize(message: Any) -> bytes:
    """Encode a schema message in Wire field order, unknown fields last."""
    out = bytearray()
    has_field = message.HasField
    for plan in _plan(message.DESCRIPTOR):
        if plan.repeated:
            values = getattr(message, plan.name)
            if not values:
                continue
            if plan.packed:
                body = b"".join(plan.encode_value(value) for value in values)
                out += plan.tag(_WIRE_LENGTH) + _length_delimited(body)
            else:
                tag = plan.tag(plan.wire_type)
                for value in values:
                    out += tag + plan.encode_value(value)
            continue
        if plan.presence:
            if not has_field(plan.name):
                continue
            value = getattr(message, plan.name)
        else:
            value = getattr(message, plan.name)
            if not value:
                continue
        out += plan.tag(plan.wire_type) + plan.encode_value(value)
    out += _encode_unknown(UnknownFieldSet(message))
    return bytes(out)
