"""Read a uiautomator window dump: find nodes by profile selectors, read their text.

Reading many fields through one dump is one request instead of one per field, and it lets a
row's fields be read together (a message row and its attachment rows) without a race against
a screen that changes between requests.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from xml.etree import ElementTree

from harness.errors import InfrastructureError

# Profile selector keys -> (dump attribute, how the value is compared).
_ATTRIBUTES = {
    "text": ("text", "equals"), "text_contains": ("text", "contains"), "text_matches": ("text", "matches"),
    "text_starts_with": ("text", "starts"), "resource_id": ("resource-id", "equals"),
    "resource_id_matches": ("resource-id", "matches"), "description": ("content-desc", "equals"),
    "description_contains": ("content-desc", "contains"), "description_matches": ("content-desc", "matches"),
    "class_name": ("class", "equals"), "package": ("package", "equals"),
    "clickable": ("clickable", "flag"), "enabled": ("enabled", "flag"), "checked": ("checked", "flag"),
}


def parse_dump(xml: str) -> ElementTree.Element:
    """Parse a window dump; raise InfrastructureError when it is not one."""
    try:
        root = ElementTree.fromstring(xml.encode("utf-8"))
    except ElementTree.ParseError as error:
        raise InfrastructureError(f"the window dump is not valid XML ({error})") from None
    if root.tag != "hierarchy":
        raise InfrastructureError(f"the window dump starts with <{root.tag}>, not <hierarchy>")
    return root


def matches(node: ElementTree.Element, selector: Mapping[str, Any]) -> bool:
    for key, expected in selector.items():
        if key == "instance":
            continue
        attribute, how = _ATTRIBUTES[key]
        actual = node.get(attribute, "")
        if how == "equals" and actual != expected:
            return False
        if how == "contains" and str(expected) not in actual:
            return False
        if how == "starts" and not actual.startswith(str(expected)):
            return False
        if how == "matches" and re.fullmatch(str(expected), actual, re.DOTALL) is None:
            return False
        if how == "flag" and (actual == "true") != bool(expected):
            return False
    return True


def iter_nodes(root: ElementTree.Element, *, exclude: Mapping[str, Any] | None = None) -> Iterator[ElementTree.Element]:
    """Yield the nodes under ``root`` in document order, skipping subtrees that match ``exclude``."""
    for child in root:
        if child.tag != "node":
            continue
        if exclude and matches(child, exclude):
            continue
        yield child
        yield from iter_nodes(child, exclude=exclude)


def find_all(root: ElementTree.Element, selector: Mapping[str, Any], *,
             exclude: Mapping[str, Any] | None = None) -> list[ElementTree.Element]:
    found = [node for node in iter_nodes(root, exclude=exclude) if matches(node, selector)]
    instance = selector.get("instance")
    if instance is not None:
        return found[instance:instance + 1]
    return found


def first_text(root: ElementTree.Element, selector: Mapping[str, Any], *,
               exclude: Mapping[str, Any] | None = None) -> str | None:
    """Return the text of the first matching node, or None when nothing matches."""
    found = find_all(root, selector, exclude=exclude)
    return found[0].get("text", "") if found else None
