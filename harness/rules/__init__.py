"""Archive-level rules: streaming visitors over ``harness.model`` records that emit findings.

``archive_rules`` builds the rules that the ``check`` command and the device suite run on one
archive. ``errors`` keeps the findings that fail a check, because warnings are only reported.
"""

from __future__ import annotations

import dataclasses

from harness.model import Finding
from harness.rules.base import Rule
from harness.rules.constants import DAY_MS, FREE_TIER_MEDIA_DAYS, POLICIES, TIERS
from harness.rules.exclusion import ExclusionRule
from harness.rules.media import MediaTierRule
from harness.rules.view_once import ViewOnceRule

__all__ = [
    "DAY_MS",
    "FREE_TIER_MEDIA_DAYS",
    "POLICIES",
    "TIERS",
    "ExclusionRule",
    "MediaTierRule",
    "Rule",
    "RuleOptions",
    "ViewOnceRule",
    "archive_rules",
    "collect_findings",
    "errors",
]


@dataclasses.dataclass(frozen=True)
class RuleOptions:
    """Inputs of the archive rules that the archive itself does not contain."""

    policy: str = "android"
    tier: str | None = None  # None skips the media tier rule
    backup_time_ms: int | None = None  # None uses BackupInfo.backupTimeMs
    free_window_days: int = FREE_TIER_MEDIA_DAYS
    structure: bool = True


def archive_rules(options: RuleOptions = RuleOptions()) -> list[Rule]:
    """Build the rules for one archive: exclusion, view-once, media tier and structure."""
    rules: list[Rule] = [
        ExclusionRule(options.policy, options.backup_time_ms),
        ViewOnceRule(),
    ]
    if options.tier is not None:
        rules.append(MediaTierRule(options.tier, options.free_window_days, options.backup_time_ms))
    if options.structure:
        from harness.rules.structure import StructureRule

        rules.append(StructureRule())
    return rules


def collect_findings(rules: list[Rule]) -> list[Finding]:
    """Return every rule's findings in rule order."""
    return [finding for rule in rules for finding in rule.findings]


def errors(findings: list[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.severity == "error"]
