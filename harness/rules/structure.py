"""Structure of the frame stream, as libsignal validates it (adapter over ``harness.validity``)."""

from __future__ import annotations

from harness.rules.base import Rule


class StructureRule(Rule):
    """Placeholder until the validity visitor lands."""
