"""Two read-only views of a batch of chat-item frames, for the fast path of ``inspect``.

A batch is the concatenation of whole Frame messages that each start with the chat-item tag,
parsed as one protobuf message in C:

* ``KeyBatch`` lists the chat items with only the fields that identify them (chat, author,
  direction, body kind, date received, text body). Its re-encoded size equals the batch size
  only when no item repeats one of those fields, so a column below with one entry per item
  then has exactly one entry from each item.
* ``ColumnBatch`` declares field 4 as a singular message, so protobuf merges every chat item of
  the batch into one and each repeated field collects the values of all items (a column).
  Empty columns prove that no item has an expiry timer, revisions, attachments, quotes, body
  ranges and so on, and unknown fields anywhere in the batch end up in the unknown-field sets
  of the few merged messages.
"""

from __future__ import annotations

from harness.schema.builder import build_message_classes

PACKAGE = "backup_harness.views"

SCHEMA = """
message KeyBatch
  4 chat_item repeated KeyItem

message KeyItem
  1 chat_id uint64
  2 author_id uint64
  8 incoming KeyIncoming oneof direction
  9 outgoing opaque oneof direction
  10 directionless opaque oneof direction
  11 standard_message KeyStandard oneof item
  12 contact_message opaque oneof item
  13 sticker_message opaque oneof item
  14 remote_deleted_message opaque oneof item
  15 update_message opaque oneof item
  16 payment_notification opaque oneof item
  17 gift_badge opaque oneof item
  18 view_once_message opaque oneof item
  19 direct_story_reply_message opaque oneof item
  20 poll opaque oneof item
  22 admin_deleted_message opaque oneof item

message KeyIncoming
  1 date_received uint64

message KeyStandard
  2 text KeyText

message KeyText
  1 body bytes

message ColumnBatch
  4 chat_item ColumnItem

message ColumnItem
  1 chat_id repeated uint64
  2 author_id repeated uint64
  3 date_sent repeated uint64
  4 expire_start_date repeated uint64
  5 expires_in_ms repeated uint64
  6 revisions repeated opaque
  7 sms repeated bool
  8 incoming ColumnIncoming
  9 outgoing repeated opaque
  10 directionless repeated opaque
  11 standard_message ColumnStandard
  12 contact_message repeated opaque
  13 sticker_message repeated opaque
  14 remote_deleted_message repeated opaque
  15 update_message repeated opaque
  16 payment_notification repeated opaque
  17 gift_badge repeated opaque
  18 view_once_message repeated opaque
  19 direct_story_reply_message repeated opaque
  20 poll repeated opaque
  21 pin_details repeated opaque
  22 admin_deleted_message repeated opaque

message ColumnIncoming
  1 date_received repeated uint64
  2 date_server_sent repeated uint64
  3 read repeated bool
  4 sealed_sender repeated bool

message ColumnStandard
  1 quote repeated opaque
  2 text ColumnText
  3 attachments repeated opaque
  4 link_preview repeated opaque
  5 long_text repeated opaque
  6 reactions repeated opaque

message ColumnText
  1 body repeated string
  2 body_ranges repeated opaque
"""

_CLASSES = build_message_classes(PACKAGE, SCHEMA)
KeyBatch = _CLASSES["KeyBatch"]
ColumnBatch = _CLASSES["ColumnBatch"]
