"""User input on the simulated device's screen, shared by ``input`` and the UI server."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from harness.android.double.ui_model import SCREEN_HEIGHT, SCREEN_WIDTH, Screen, UiNode

if TYPE_CHECKING:
    from harness.android.double.device import SimulatedDevice

# Key names uiautomator2's pressKey and `input keyevent` accept, by their KEYCODE_ number.
KEY_CODES = {3: "home", 4: "back", 66: "enter", 67: "delete", 82: "menu", 187: "recent"}


def tap(device: SimulatedDevice, x: float, y: float) -> bool:
    """Tap the point; return whether a view handled it."""
    screen = device.foreground_screen()
    node = screen.node_at(x, y)
    if node is None:
        return False
    return activate(device, node)


def activate(device: SimulatedDevice, node: UiNode) -> bool:
    """Perform a click on ``node``: focus a text field, or run the view's click action."""
    if node.on_set_text is not None:
        device.focused_field = node.resource_id or None
    if node.on_click is not None and node.enabled:
        device.log("ViewRootImpl", f"click {node.resource_id or node.text or node.class_name}",
                   level="D", pid=device.pid_of(node.package) or 1)
        node.on_click()
        return True
    return node.on_set_text is not None


def type_text(device: SimulatedDevice, text: str) -> bool:
    """Append typed text to the focused field (``input text``); ``%s`` stands for a space."""
    field = _focused(device.foreground_screen(), device.focused_field)
    if field is None or field.on_set_text is None:
        return False
    field.on_set_text(field.text + text.replace("%s", " "))
    return True


def set_text(node: UiNode, text: str) -> bool:
    """Replace a field's text (uiautomator2 ``setText``)."""
    if node.on_set_text is None:
        return False
    node.on_set_text(text)
    return True


def press_key(device: SimulatedDevice, key: str | int) -> bool:
    """Press a key by name (``back``) or KEYCODE_ name/number."""
    name = KEY_CODES.get(key, str(key)) if isinstance(key, int) else key
    name = name.lower().removeprefix("keycode_")
    if name.isdigit():
        name = KEY_CODES.get(int(name), name)
    if name == "home":
        device.foreground = None
        return True
    if name == "back":
        runtime = device.runtimes.get(device.foreground) if device.foreground else None
        handled = runtime.on_back() if runtime is not None else False
        if not handled:
            device.foreground = None
        return True
    return name in ("enter", "delete", "menu", "recent")


def screenshot_png(device: SimulatedDevice) -> bytes:
    """Render the foreground screen; a secure window renders black, as screencap returns it."""
    screen = device.foreground_screen()
    image = Image.new("RGB", (SCREEN_WIDTH // 2, SCREEN_HEIGHT // 2), (0, 0, 0) if screen.secure else (255, 255, 255))
    if not screen.secure:
        draw = ImageDraw.Draw(image)
        for node in screen.nodes():
            label = node.text or node.description
            if label:
                left, top, _, _ = node.bounds
                draw.text((left // 2 + 8, top // 2 + 8), label[:80], fill=(0, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _focused(screen: Screen, resource_id: str | None) -> UiNode | None:
    candidates = [node for node in screen.nodes() if node.on_set_text is not None]
    for node in candidates:
        if node.focused or (resource_id and node.resource_id == resource_id):
            return node
    return candidates[0] if len(candidates) == 1 else None
