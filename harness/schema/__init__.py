"""Protobuf message classes for the backup frame stream (this project's own schema).

The classes come from the table in ``definition.py``, built at import time with the protobuf
runtime (upb), which keeps unknown fields when a message is parsed and serialised again. Use
them to read frames and to build or edit frames::

    from harness import schema
    frame = schema.Frame()
    frame.chat.id = 1
    frame.chat.recipient_id = 2
    data = frame.SerializeToString()

Nested messages are attributes of their parent class (``schema.SendStatus.Sent``,
``schema.FilePointer.LocatorInfo``); enum values are class attributes too
(``schema.Contact.VISIBLE``).
"""

from __future__ import annotations

from harness.schema.builder import build_message_classes
from harness.schema.definition import PACKAGE, SCHEMA

MESSAGE_CLASSES = build_message_classes(PACKAGE, SCHEMA)

BackupInfo = MESSAGE_CLASSES["BackupInfo"]
Frame = MESSAGE_CLASSES["Frame"]
AccountData = MESSAGE_CLASSES["AccountData"]
Recipient = MESSAGE_CLASSES["Recipient"]
Contact = MESSAGE_CLASSES["Contact"]
Group = MESSAGE_CLASSES["Group"]
DistributionListItem = MESSAGE_CLASSES["DistributionListItem"]
DistributionList = MESSAGE_CLASSES["DistributionList"]
Self = MESSAGE_CLASSES["Self"]
ReleaseNotes = MESSAGE_CLASSES["ReleaseNotes"]
CallLink = MESSAGE_CLASSES["CallLink"]
Chat = MESSAGE_CLASSES["Chat"]
StickerPack = MESSAGE_CLASSES["StickerPack"]
AdHocCall = MESSAGE_CLASSES["AdHocCall"]
NotificationProfile = MESSAGE_CLASSES["NotificationProfile"]
ChatFolder = MESSAGE_CLASSES["ChatFolder"]
ChatItem = MESSAGE_CLASSES["ChatItem"]
IncomingMessageDetails = MESSAGE_CLASSES["IncomingMessageDetails"]
OutgoingMessageDetails = MESSAGE_CLASSES["OutgoingMessageDetails"]
DirectionlessMessageDetails = MESSAGE_CLASSES["DirectionlessMessageDetails"]
PinDetails = MESSAGE_CLASSES["PinDetails"]
SendStatus = MESSAGE_CLASSES["SendStatus"]
Text = MESSAGE_CLASSES["Text"]
BodyRange = MESSAGE_CLASSES["BodyRange"]
Reaction = MESSAGE_CLASSES["Reaction"]
StandardMessage = MESSAGE_CLASSES["StandardMessage"]
Quote = MESSAGE_CLASSES["Quote"]
LinkPreview = MESSAGE_CLASSES["LinkPreview"]
MessageAttachment = MESSAGE_CLASSES["MessageAttachment"]
FilePointer = MESSAGE_CLASSES["FilePointer"]
ContactMessage = MESSAGE_CLASSES["ContactMessage"]
ContactAttachment = MESSAGE_CLASSES["ContactAttachment"]
StickerMessage = MESSAGE_CLASSES["StickerMessage"]
Sticker = MESSAGE_CLASSES["Sticker"]
RemoteDeletedMessage = MESSAGE_CLASSES["RemoteDeletedMessage"]
AdminDeletedMessage = MESSAGE_CLASSES["AdminDeletedMessage"]
ViewOnceMessage = MESSAGE_CLASSES["ViewOnceMessage"]
DirectStoryReplyMessage = MESSAGE_CLASSES["DirectStoryReplyMessage"]
PaymentNotification = MESSAGE_CLASSES["PaymentNotification"]
GiftBadge = MESSAGE_CLASSES["GiftBadge"]
Poll = MESSAGE_CLASSES["Poll"]
ChatUpdateMessage = MESSAGE_CLASSES["ChatUpdateMessage"]
SimpleChatUpdate = MESSAGE_CLASSES["SimpleChatUpdate"]
ExpirationTimerChatUpdate = MESSAGE_CLASSES["ExpirationTimerChatUpdate"]
