"""Structure of the frame stream as libsignal validates a remote backup (``harness.validity``).

libsignal's expiry checks overlap the exclusion rule: both reject short and soon-expiring
timers ("expiration too soon"). The exclusion rule applies the client's boundary policy and
names the 24 h rules, so this adapter drops those validity findings and each violation is
reported once. The other expiry findings ("start date but no duration", "read/sent but
expiration timer has not started") have no exclusion counterpart and are kept.
"""

from __future__ import annotations

from harness.model import Finding
from harness.validity import Purpose, ValidityChecker

# Prefixes of the libsignal expiry messages that the exclusion rule already reports.
OVERLAPPING_EXPIRY_MESSAGES = ("expiration too soon",)


def overlaps_exclusion(finding: Finding) -> bool:
    if finding.rule != "validity.expiry":
        return False
    text = finding.message.split(": ", 1)[-1]
    return text.startswith(OVERLAPPING_EXPIRY_MESSAGES)


class StructureRule(ValidityChecker):
    """libsignal's structural rules for a remote backup, minus what the exclusion rule covers."""

    def __init__(self) -> None:
        super().__init__(Purpose.REMOTE_BACKUP)

    def end(self) -> None:
        super().end()
        self.findings[:] = [finding for finding in self.findings if not overlaps_exclusion(finding)]
