"""Screens of the simulated device: a view tree, its uiautomator XML dump and selectors.

A :class:`Screen` is what the foreground app shows. Nodes carry the attributes uiautomator
reports (text, resource id, content description, flags, bounds) plus the callbacks that a tap
or typed text triggers, so the uiautomator2 JSON-RPC server of the double can answer
``dumpWindowHierarchy``, ``objInfo``, ``click`` and ``setText`` from the same tree.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from typing import Any
from xml.sax.saxutils import quoteattr

SCREEN_WIDTH = 1080
SCREEN_HEIGHT = 2340
ROW_HEIGHT = 110

_BOOLEAN_FIELDS = {
    "checkable": "checkable", "checked": "checked", "clickable": "clickable",
    "longClickable": "long_clickable", "scrollable": "scrollable", "enabled": "enabled",
    "focusable": "focusable", "focused": "focused", "selected": "selected",
}


@dataclasses.dataclass(eq=False)
class UiNode:
    """One view. ``on_click``/``on_set_text`` are what the app does when the user acts."""

    class_name: str = "android.widget.LinearLayout"
    text: str = ""
    resource_id: str = ""
    description: str = ""
    package: str = ""
    clickable: bool = False
    long_clickable: bool = False
    checkable: bool = False
    checked: bool = False
    enabled: bool = True
    focusable: bool = False
    focused: bool = False
    scrollable: bool = False
    selected: bool = False
    password: bool = False
    children: list[UiNode] = dataclasses.field(default_factory=list)
    on_click: Callable[[], None] | None = None
    on_set_text: Callable[[str], None] | None = None
    bounds: tuple[int, int, int, int] = (0, 0, 0, 0)
    index: int = 0

    def iter(self) -> Iterator[UiNode]:
        """Yield this node and its descendants in document order."""
        yield self
        for child in self.children:
            yield from child.iter()


@dataclasses.dataclass(eq=False)
class Screen:
    """What the foreground window shows. ``secure`` is FLAG_SECURE (no screenshots)."""

    package: str
    activity: str
    root: UiNode
    secure: bool = False

    def __post_init__(self) -> None:
        _layout(self.root, 0, 0, SCREEN_WIDTH, self.package)

    def nodes(self) -> list[UiNode]:
        return list(self.root.iter())

    def to_xml(self) -> str:
        """Render the tree as ``uiautomator dump`` writes it."""
        parts = ["<?xml version='1.0' encoding='UTF-8' standalone='yes' ?>", '<hierarchy rotation="0">']
        _render(self.root, parts)
        parts.append("</hierarchy>")
        return "".join(parts)

    def node_at(self, x: float, y: float) -> UiNode | None:
        """Return the deepest clickable node whose bounds contain the point."""
        hit = None
        for node in self.root.iter():
            left, top, right, bottom = node.bounds
            if left <= x < right and top <= y < bottom and (node.clickable or node.on_set_text):
                hit = node
        return hit

    def find(self, selector: dict[str, Any]) -> list[UiNode]:
        """Return the nodes a uiautomator2 selector matches, in document order."""
        matches = [node for node in self.root.iter() if _matches(node, selector)]
        for relation, sub_selector in zip(selector.get("childOrSibling") or [],
                                          selector.get("childOrSiblingSelector") or []):
            matches = self._related(matches, relation, sub_selector)
        instance = selector.get("instance") if _has(selector, "instance") else None
        if instance is not None:
            return matches[instance:instance + 1]
        return matches

    def _related(self, anchors: list[UiNode], relation: str, selector: dict[str, Any]) -> list[UiNode]:
        found: list[UiNode] = []
        for anchor in anchors:
            if relation == "child":
                pool = [node for child in anchor.children for node in child.iter()]
            else:
                parent = self._parent_of(anchor)
                pool = [node for node in (parent.children if parent else []) if node is not anchor]
            found.extend(node for node in pool if _matches(node, selector) and node not in found)
        instance = selector.get("instance") if _has(selector, "instance") else None
        return found[instance:instance + 1] if instance is not None else found

    def _parent_of(self, target: UiNode) -> UiNode | None:
        for node in self.root.iter():
            if any(child is target for child in node.children):
                return node
        return None


def object_info(node: UiNode) -> dict[str, Any]:
    """Return the ``objInfo`` JSON of a node, as the uiautomator2 server reports it."""
    left, top, right, bottom = node.bounds
    box = {"left": left, "top": top, "right": right, "bottom": bottom}
    return {
        "bounds": box, "visibleBounds": dict(box), "childCount": len(node.children),
        "className": node.class_name, "contentDescription": node.description or None,
        "packageName": node.package, "resourceName": node.resource_id or None,
        "text": node.text, "checkable": node.checkable, "checked": node.checked,
        "clickable": node.clickable, "enabled": node.enabled, "focusable": node.focusable,
        "focused": node.focused, "longClickable": node.long_clickable,
        "scrollable": node.scrollable, "selected": node.selected,
    }


def describe_selector(selector: dict[str, Any]) -> str:
    """Render a selector the way UiSelector.toString() does, for not-found messages."""
    fields = [f"{key}={value}" for key, value in selector.items()
              if key not in ("mask", "childOrSibling", "childOrSiblingSelector")]
    return "UiSelector[" + ", ".join(fields) + "]"


def _has(selector: dict[str, Any], key: str) -> bool:
    return key in selector and key not in ("mask", "childOrSibling", "childOrSiblingSelector")


def _java_full_match(pattern: str, value: str) -> bool:
    try:
        return re.fullmatch(pattern, value, re.DOTALL) is not None
    except re.error:
        return False


def _matches(node: UiNode, selector: dict[str, Any]) -> bool:
    checks: dict[str, Callable[[Any], bool]] = {
        "text": lambda v: node.text == v,
        "textContains": lambda v: v in node.text,
        "textMatches": lambda v: _java_full_match(v, node.text),
        "textStartsWith": lambda v: node.text.startswith(v),
        "className": lambda v: node.class_name == v,
        "classNameMatches": lambda v: _java_full_match(v, node.class_name),
        "description": lambda v: node.description == v,
        "descriptionContains": lambda v: v in node.description,
        "descriptionMatches": lambda v: _java_full_match(v, node.description),
        "descriptionStartsWith": lambda v: node.description.startswith(v),
        "packageName": lambda v: node.package == v,
        "packageNameMatches": lambda v: _java_full_match(v, node.package),
        "resourceId": lambda v: node.resource_id == v,
        "resourceIdMatches": lambda v: _java_full_match(v, node.resource_id),
        "index": lambda v: node.index == v,
    }
    for key, value in selector.items():
        if key in checks:
            if not checks[key](value):
                return False
        elif key in _BOOLEAN_FIELDS:
            if getattr(node, _BOOLEAN_FIELDS[key]) != bool(value):
                return False
    return True


def _layout(node: UiNode, top: int, depth: int, width: int, package: str) -> int:
    """Assign bounds: every leaf is one row, containers span their children. Return bottom."""
    node.package = node.package or package
    left = min(depth * 16, 200)
    if not node.children:
        node.bounds = (left, top, width - left, top + ROW_HEIGHT)
        return top + ROW_HEIGHT
    bottom = top
    for index, child in enumerate(node.children):
        child.index = index
        bottom = _layout(child, bottom, depth + 1, width, package)
    if depth == 0:
        bottom = max(bottom, SCREEN_HEIGHT)
    node.bounds = (left, top, width - left, bottom)
    return bottom


def _render(node: UiNode, parts: list[str]) -> None:
    left, top, right, bottom = node.bounds
    attributes = {
        "index": str(node.index), "text": node.text, "resource-id": node.resource_id,
        "class": node.class_name, "package": node.package, "content-desc": node.description,
        "checkable": _flag(node.checkable), "checked": _flag(node.checked),
        "clickable": _flag(node.clickable), "enabled": _flag(node.enabled),
        "focusable": _flag(node.focusable), "focused": _flag(node.focused),
        "scrollable": _flag(node.scrollable), "long-clickable": _flag(node.long_clickable),
        "password": _flag(node.password), "selected": _flag(node.selected),
        "bounds": f"[{left},{top}][{right},{bottom}]",
    }
    rendered = " ".join(f"{key}={quoteattr(value)}" for key, value in attributes.items())
    if not node.children:
        parts.append(f"<node {rendered} />")
        return
    parts.append(f"<node {rendered}>")
    for child in node.children:
        _render(child, parts)
    parts.append("</node>")


def _flag(value: bool) -> str:
    return "true" if value else "false"
