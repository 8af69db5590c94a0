"""The backup frame schema of this project, as a table read by ``builder.py``.

Field numbers and wire types follow the Signal backup format (proto3, package ``signal.backup``
upstream). Names here are snake_case. Every message that is declared lists all of its fields, so
a parsed message re-serialises to the same bytes; sub-messages this harness never looks into are
``opaque`` (kept as raw bytes). ``optional`` marks fields whose presence matters (explicit
presence), as in the upstream schema. Field lines are in upstream declaration order, which
``harness.schema.encoding.serialize`` follows.
"""

PACKAGE = "backup_harness.frames"

SCHEMA = """
enum AvatarColor: A100=0 A110=1 A120=2 A130=3 A140=4 A150=5 A160=6 A170=7 A180=8 A190=9 A200=10 A210=11

message BackupInfo
  1 version uint64
  2 backup_time_ms uint64
  3 media_root_backup_key bytes
  4 current_app_version string
  5 first_app_version string
  6 debug_info bytes

message Frame
  1 account AccountData oneof item
  2 recipient Recipient oneof item
  3 chat Chat oneof item
  4 chat_item ChatItem oneof item
  5 sticker_pack StickerPack oneof item
  6 ad_hoc_call AdHocCall oneof item
  7 notification_profile NotificationProfile oneof item
  8 chat_folder ChatFolder oneof item

# ---- account ----------------------------------------------------------------------------

message AccountData
  1 profile_key bytes
  2 username optional string
  3 username_link AccountData.UsernameLink
  4 given_name string
  5 family_name string
  6 avatar_url_path string
  7 donation_subscriber_data AccountData.SubscriberData
  9 account_settings AccountData.AccountSettings
  10 backups_subscriber_data AccountData.IAPSubscriberData
  11 svr_pin string
  12 android_specific_settings AccountData.AndroidSpecificSettings
  13 bio_text string
  14 bio_emoji string
  16 ios_specific_settings AccountData.IOSSpecificSettings

message AccountData.UsernameLink
  enum Color: UNKNOWN=0 BLUE=1 WHITE=2 GREY=3 OLIVE=4 GREEN=5 ORANGE=6 PINK=7 PURPLE=8
  1 entropy bytes
  2 server_id bytes
  3 color Color

message AccountData.AutoDownloadSettings
  enum AutoDownloadOption: UNKNOWN=0 NEVER=1 WIFI=2 WIFI_AND_CELLULAR=3
  1 images AutoDownloadOption
  2 audio AutoDownloadOption
  3 video AutoDownloadOption
  4 documents AutoDownloadOption

message AccountData.AccountSettings
  enum PhoneNumberSharingMode: UNKNOWN=0 EVERYBODY=1 NOBODY=2
  enum SentMediaQuality: UNKNOWN_QUALITY=0 STANDARD=1 HIGH=2
  enum AppTheme: UNKNOWN_APP_THEME=0 SYSTEM=1 LIGHT=2 DARK=3
  enum CallsUseLessDataSetting: UNKNOWN_CALL_DATA_SETTING=0 NEVER=1 MOBILE_DATA_ONLY=2 WIFI_AND_MOBILE_DATA=3
  1 read_receipts bool
  2 sealed_sender_indicators bool
  3 typing_indicators bool
  4 link_previews bool
  5 not_discoverable_by_phone_number bool
  6 prefer_contact_avatars bool
  7 universal_expire_timer_seconds uint32
  8 preferred_reaction_emoji repeated string
  9 display_badges_on_profile bool
  10 keep_muted_chats_archived bool
  11 has_set_my_stories_privacy bool
  12 has_viewed_onboarding_story bool
  13 stories_disabled bool
  14 story_view_receipts_enabled optional bool
  15 has_seen_group_story_education_sheet bool
  16 has_completed_username_onboarding bool
  17 phone_number_sharing_mode PhoneNumberSharingMode
  18 default_chat_style opaque                   # ChatStyle
  19 custom_chat_colors repeated opaque          # ChatStyle.CustomChatColor
  20 optimize_on_device_storage bool
  21 backup_tier optional uint64
  23 default_sent_media_quality SentMediaQuality
  24 auto_download_settings AccountData.AutoDownloadSettings
  26 screen_lock_timeout_minutes optional uint32
  27 pin_reminders optional bool
  28 app_theme AppTheme
  29 calls_use_less_data_setting CallsUseLessDataSetting
  30 allow_sealed_sender_from_anyone bool
  31 allow_automatic_key_verification bool
  32 has_seen_admin_delete_education_dialog bool

message AccountData.SubscriberData
  1 subscriber_id bytes
  2 currency_code string
  3 manually_cancelled bool

message AccountData.IAPSubscriberData
  1 subscriber_id bytes
  2 purchase_token string oneof iap_subscription_id
  3 original_transaction_id uint64 oneof iap_subscription_id

message AccountData.AndroidSpecificSettings
  enum NavigationBarSize: UNKNOWN_BAR_SIZE=0 NORMAL=1 COMPACT=2
  1 use_system_emoji bool
  2 screenshot_security bool
  3 navigation_bar_size NavigationBarSize

message AccountData.IOSSpecificSettings
  1 is_system_call_log_enabled bool

# ---- recipients --------------------------------------------------------------------------

message Recipient
  1 id uint64
  2 contact Contact oneof destination
  3 group Group oneof destination
  4 distribution_list DistributionListItem oneof destination
  5 self Self oneof destination
  6 release_notes ReleaseNotes oneof destination
  7 call_link CallLink oneof destination

message Contact
  enum Visibility: VISIBLE=0 HIDDEN=1 HIDDEN_MESSAGE_REQUEST=2
  enum IdentityState: DEFAULT=0 VERIFIED=1 UNVERIFIED=2
  1 aci optional bytes
  2 pni optional bytes
  3 username optional string
  4 e164 optional uint64
  5 blocked bool
  6 visibility Visibility
  7 registered Contact.Registered oneof registration
  8 not_registered Contact.NotRegistered oneof registration
  9 profile_key optional bytes
  10 profile_sharing bool
  11 profile_given_name optional string
  12 profile_family_name optional string
  13 hide_story bool
  14 identity_key optional bytes
  15 identity_state IdentityState
  16 nickname Contact.Name
  17 note string
  18 system_given_name string
  19 system_family_name string
  20 system_nickname string
  21 avatar_color optional AvatarColor
  22 key_transparency_data optional bytes
  23 blocked_at_timestamp uint64

message Contact.Registered

message Contact.NotRegistered
  1 unregistered_timestamp uint64

message Contact.Name
  1 given string
  2 family string

message Group
  enum StorySendMode: DEFAULT=0 DISABLED=1 ENABLED=2
  1 master_key bytes
  2 whitelisted bool
  3 hide_story bool
  4 story_send_mode StorySendMode
  5 snapshot Group.GroupSnapshot
  6 blocked bool
  7 avatar_color optional AvatarColor
  8 blocked_at_timestamp uint64

message Group.GroupAttributeBlob
  1 title string oneof content
  2 avatar bytes oneof content
  3 disappearing_messages_duration uint32 oneof content
  4 description_text string oneof content

message Group.GroupSnapshot                     # upstream declares description right after title
  2 title Group.GroupAttributeBlob
  11 description Group.GroupAttributeBlob
  3 avatar_url string
  4 disappearing_messages_timer Group.GroupAttributeBlob
  5 access_control opaque                       # Group.AccessControl
  6 version uint32
  7 members repeated opaque                     # Group.Member
  8 members_pending_profile_key repeated opaque
  9 members_pending_admin_approval repeated opaque
  10 invite_link_password bytes
  12 announcements_only bool
  13 members_banned repeated opaque
  14 terminated bool

message DistributionListItem
  1 distribution_id bytes
  2 deletion_timestamp uint64 oneof item
  3 distribution_list DistributionList oneof item

message DistributionList
  enum PrivacyMode: UNKNOWN=0 ONLY_WITH=1 ALL_EXCEPT=2 ALL=3
  1 name string
  2 allow_replies bool
  3 privacy_mode PrivacyMode
  4 member_recipient_ids repeated uint64

message Self
  1 avatar_color optional AvatarColor

message ReleaseNotes

message CallLink
  enum Restrictions: UNKNOWN=0 NONE=1 ADMIN_APPROVAL=2
  1 root_key bytes
  2 admin_key optional bytes
  3 name string
  4 restrictions Restrictions
  5 expiration_ms uint64

# ---- other top-level frames ---------------------------------------------------------------

message Chat
  1 id uint64
  2 recipient_id uint64
  3 archived bool
  4 pinned_order optional uint32
  5 expiration_timer_ms optional uint64
  6 mute_until_ms optional uint64
  7 marked_unread bool
  8 dont_notify_for_mentions_if_muted bool
  9 style opaque                                # ChatStyle
  10 expire_timer_version uint32

message StickerPack
  1 pack_id bytes
  2 pack_key bytes

message AdHocCall
  enum State: UNKNOWN_STATE=0 GENERIC=1
  1 call_id uint64
  2 recipient_id uint64
  3 state State
  4 call_timestamp uint64

message NotificationProfile
  enum DayOfWeek: UNKNOWN=0 MONDAY=1 TUESDAY=2 WEDNESDAY=3 THURSDAY=4 FRIDAY=5 SATURDAY=6 SUNDAY=7
  1 name string
  2 emoji optional string
  3 color fixed32
  4 created_at_ms uint64
  5 allow_all_calls bool
  6 allow_all_mentions bool
  7 allowed_members repeated uint64
  8 schedule_enabled bool
  9 schedule_start_time uint32
  10 schedule_end_time uint32
  11 schedule_days_enabled repeated DayOfWeek unpacked
  12 id bytes

message ChatFolder
  enum FolderType: UNKNOWN=0 ALL=1 CUSTOM=2
  1 name string
  2 show_only_unread bool
  3 show_muted_chats bool
  4 include_all_individual_chats bool
  5 include_all_group_chats bool
  6 folder_type FolderType
  7 included_recipient_ids repeated uint64
  8 excluded_recipient_ids repeated uint64
  9 id bytes

# ---- chat items ---------------------------------------------------------------------------

message ChatItem
  1 chat_id uint64
  2 author_id uint64
  3 date_sent uint64
  4 expire_start_date optional uint64
  5 expires_in_ms optional uint64
  6 revisions repeated ChatItem
  7 sms bool
  8 incoming IncomingMessageDetails oneof directional_details
  9 outgoing OutgoingMessageDetails oneof directional_details
  10 directionless DirectionlessMessageDetails oneof directional_details
  11 standard_message StandardMessage oneof item
  12 contact_message ContactMessage oneof item
  13 sticker_message StickerMessage oneof item
  14 remote_deleted_message RemoteDeletedMessage oneof item
  15 update_message ChatUpdateMessage oneof item
  16 payment_notification PaymentNotification oneof item
  17 gift_badge GiftBadge oneof item
  18 view_once_message ViewOnceMessage oneof item
  19 direct_story_reply_message DirectStoryReplyMessage oneof item
  20 poll Poll oneof item
  21 pin_details PinDetails
  22 admin_deleted_message AdminDeletedMessage oneof item

message IncomingMessageDetails
  1 date_received uint64
  2 date_server_sent optional uint64
  3 read bool
  4 sealed_sender bool

message OutgoingMessageDetails
  1 send_status repeated SendStatus
  2 date_received uint64

message DirectionlessMessageDetails

message PinDetails
  1 pinned_at_timestamp uint64
  2 pin_expires_at_timestamp uint64 oneof pin_expiry
  3 pin_never_expires bool oneof pin_expiry

message SendStatus
  1 recipient_id uint64
  2 timestamp uint64
  3 pending SendStatus.Pending oneof delivery_status
  4 sent SendStatus.Sent oneof delivery_status
  5 delivered SendStatus.Delivered oneof delivery_status
  6 read SendStatus.Read oneof delivery_status
  7 viewed SendStatus.Viewed oneof delivery_status
  8 skipped SendStatus.Skipped oneof delivery_status
  9 failed SendStatus.Failed oneof delivery_status

message SendStatus.Pending
message SendStatus.Sent
  1 sealed_sender bool
message SendStatus.Delivered
  1 sealed_sender bool
message SendStatus.Read
  1 sealed_sender bool
message SendStatus.Viewed
  1 sealed_sender bool
message SendStatus.Skipped
message SendStatus.Failed
  enum FailureReason: UNKNOWN=0 NETWORK=1 IDENTITY_KEY_MISMATCH=2
  1 reason FailureReason

message Text
  1 body string
  2 body_ranges repeated BodyRange

message BodyRange
  enum Style: NONE=0 BOLD=1 ITALIC=2 SPOILER=3 STRIKETHROUGH=4 MONOSPACE=5
  1 start uint32
  2 length uint32
  3 mention_aci bytes oneof associated_value
  4 style Style oneof associated_value

message Reaction
  1 emoji string
  2 author_id uint64
  3 sent_timestamp uint64
  4 sort_order uint64

message StandardMessage
  1 quote optional Quote
  2 text optional Text
  3 attachments repeated MessageAttachment
  4 link_preview repeated LinkPreview
  5 long_text optional FilePointer
  6 reactions repeated Reaction

message Quote
  enum Type: UNKNOWN=0 NORMAL=1 GIFT_BADGE=2 VIEW_ONCE=3 POLL=4
  1 target_sent_timestamp optional uint64
  2 author_id uint64
  3 text optional Text
  4 attachments repeated Quote.QuotedAttachment
  5 type Type

message Quote.QuotedAttachment
  1 content_type optional string
  2 file_name optional string
  3 thumbnail optional MessageAttachment

message LinkPreview
  1 url string
  2 title optional string
  3 image optional FilePointer
  4 description optional string
  5 date optional uint64

message MessageAttachment
  enum Flag: NONE=0 VOICE_MESSAGE=1 BORDERLESS=2 GIF=3
  1 pointer FilePointer
  2 flag Flag
  3 was_downloaded bool
  4 client_uuid optional bytes

message FilePointer
  4 content_type optional string
  5 incremental_mac optional bytes
  6 incremental_mac_chunk_size optional uint32
  7 file_name optional string
  8 width optional uint32
  9 height optional uint32
  10 caption optional string
  11 blur_hash optional string
  13 locator_info FilePointer.LocatorInfo

message FilePointer.LocatorInfo
  1 key bytes
  3 size uint32
  4 transit_cdn_key optional string
  5 transit_cdn_number optional uint32
  6 transit_tier_upload_timestamp optional uint64
  7 media_tier_cdn_number optional uint32
  9 local_key optional bytes
  10 plaintext_hash bytes oneof integrity_check
  11 encrypted_digest bytes oneof integrity_check

message ContactMessage
  1 contact ContactAttachment
  2 reactions repeated Reaction

message ContactAttachment
  1 name optional opaque                        # ContactAttachment.Name
  3 number repeated opaque                      # ContactAttachment.Phone
  4 email repeated opaque                       # ContactAttachment.Email
  5 address repeated opaque                     # ContactAttachment.PostalAddress
  6 avatar optional FilePointer
  7 organization string

message StickerMessage
  1 sticker Sticker
  2 reactions repeated Reaction

message Sticker
  1 pack_id bytes
  2 pack_key bytes
  3 sticker_id uint32
  4 emoji optional string
  5 data FilePointer

message RemoteDeletedMessage

message AdminDeletedMessage
  1 admin_id uint64

message ViewOnceMessage
  1 attachment MessageAttachment
  2 reactions repeated Reaction

message DirectStoryReplyMessage
  1 text_reply DirectStoryReplyMessage.TextReply oneof reply
  2 emoji string oneof reply
  3 reactions repeated Reaction

message DirectStoryReplyMessage.TextReply
  1 text Text
  2 long_text FilePointer

message PaymentNotification
  1 amount_mob optional string
  2 fee_mob optional string
  3 note optional string
  4 transaction_details opaque                  # PaymentNotification.TransactionDetails

message GiftBadge
  enum State: UNOPENED=0 OPENED=1 REDEEMED=2 FAILED=3
  1 receipt_credential_presentation bytes
  2 state State

message Poll
  1 question string
  2 allow_multiple bool
  3 options repeated opaque                     # Poll.PollOption
  4 has_ended bool
  5 reactions repeated Reaction

# ---- chat updates -------------------------------------------------------------------------

message ChatUpdateMessage
  1 simple_update SimpleChatUpdate oneof update
  2 group_change opaque oneof update             # GroupChangeChatUpdate
  3 expiration_timer_change ExpirationTimerChatUpdate oneof update
  4 profile_change opaque oneof update           # ProfileChangeChatUpdate
  5 thread_merge opaque oneof update             # ThreadMergeChatUpdate
  6 session_switchover opaque oneof update       # SessionSwitchoverChatUpdate
  7 individual_call opaque oneof update          # IndividualCall
  8 group_call opaque oneof update               # GroupCall
  9 learned_profile_change opaque oneof update   # LearnedProfileChatUpdate
  10 poll_terminate opaque oneof update          # PollTerminateUpdate
  11 pin_message opaque oneof update             # PinMessageUpdate

message SimpleChatUpdate
  enum Type: UNKNOWN=0 JOINED_SIGNAL=1 IDENTITY_UPDATE=2 IDENTITY_VERIFIED=3 IDENTITY_DEFAULT=4 CHANGE_NUMBER=5 RELEASE_CHANNEL_DONATION_REQUEST=6 END_SESSION=7 CHAT_SESSION_REFRESH=8 BAD_DECRYPT=9 PAYMENTS_ACTIVATED=10 PAYMENT_ACTIVATION_REQUEST=11 UNSUPPORTED_PROTOCOL_MESSAGE=12 REPORTED_SPAM=13 BLOCKED=14 UNBLOCKED=15 MESSAGE_REQUEST_ACCEPTED=16
  1 type Type

message ExpirationTimerChatUpdate
  1 expires_in_ms uint64
"""
