"""Constants of the archive rules, each with its source on its line."""

from __future__ import annotations

# 24 h cutoff: Android EXPIRATION_CUTOFF = 1.days, iOS .dayInMs, Desktop DAY.
DAY_MS = 86_400_000

# Free-tier media window (freeTierMediaDays): 45 days in the product blog and in the iOS fallback
# value. The Signal-Server sample configuration uses 30, so callers pass the stub's value.
FREE_TIER_MEDIA_DAYS = 45

# Boundary policies for a started timer: Android skips when expiresAt < backup time + 24 h
# (ChatItemArchiveExporter), iOS and Desktop when expiresAt <= backup time + 24 h.
POLICIES = ("android", "ios")

# Backup tiers: FREE is backup level 200, PAID is 201 (Signal-Server, libsignal zkgroup).
TIERS = ("free", "paid")
