"""APK files for the double: read the manifest facts ``pm install`` needs, and build one.

A real APK stores AndroidManifest.xml as binary XML. The double reads that form (the string
pool and start-element chunks, enough for the package name, version, permissions, the
debuggable flag and the launcher activity) and also a plain-text manifest, which is what
:func:`build_double_apk` writes for the apps the double hosts itself.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from pathlib import Path
from xml.etree import ElementTree

ANDROID_NS = "http://schemas.android.com/apk/res/android"
# The double-only asset that tells the simulated device which app runtime to start.
RUNTIME_ASSET = "assets/harness-double.json"

_RES_XML_TYPE = 0x0003
_RES_STRING_POOL_TYPE = 0x0001
_RES_XML_START_ELEMENT_TYPE = 0x0102
_UTF8_FLAG = 1 << 8
_TYPE_STRING = 0x03
_TYPE_INT_BOOLEAN = 0x12


class ApkError(ValueError):
    """The file is not an APK the double can install; the text is the INSTALL_FAILED reason."""


@dataclasses.dataclass(frozen=True)
class ApkManifest:
    package: str
    version_code: int = 1
    version_name: str = "1.0"
    debuggable: bool = False
    permissions: tuple[str, ...] = ()
    launcher_activity: str | None = None
    runtime: dict[str, object] = dataclasses.field(default_factory=dict)


def read_manifest(path: Path) -> ApkManifest:
    """Read the manifest facts of the APK at ``path``; raise ApkError when it is not one."""
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                raw = archive.read("AndroidManifest.xml")
            except KeyError:
                raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST") from None
            runtime: dict[str, object] = {}
            if RUNTIME_ASSET in archive.namelist():
                runtime = json.loads(archive.read(RUNTIME_ASSET))
    except zipfile.BadZipFile:
        raise ApkError("INSTALL_PARSE_FAILED_NOT_APK") from None
    elements = _binary_elements(raw) if raw[:2] == struct.pack("<H", _RES_XML_TYPE) else _text_elements(raw)
    return _manifest_from(elements, runtime)


def build_double_apk(path: Path, manifest: ApkManifest) -> Path:
    """Write an APK the double installs: a zip with a text manifest and the runtime asset."""
    root = ElementTree.Element("manifest", {"package": manifest.package,
                                            f"{{{ANDROID_NS}}}versionCode": str(manifest.version_code),
                                            f"{{{ANDROID_NS}}}versionName": manifest.version_name})
    for permission in manifest.permissions:
        ElementTree.SubElement(root, "uses-permission", {f"{{{ANDROID_NS}}}name": permission})
    application = ElementTree.SubElement(
        root, "application", {f"{{{ANDROID_NS}}}debuggable": str(manifest.debuggable).lower()})
    if manifest.launcher_activity:
        activity = ElementTree.SubElement(application, "activity",
                                          {f"{{{ANDROID_NS}}}name": manifest.launcher_activity})
        intent_filter = ElementTree.SubElement(activity, "intent-filter")
        ElementTree.SubElement(intent_filter, "action", {f"{{{ANDROID_NS}}}name": "android.intent.action.MAIN"})
        ElementTree.SubElement(intent_filter, "category",
                               {f"{{{ANDROID_NS}}}name": "android.intent.category.LAUNCHER"})
    ElementTree.register_namespace("android", ANDROID_NS)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AndroidManifest.xml", ElementTree.tostring(root, xml_declaration=True, encoding="utf-8"))
        archive.writestr(RUNTIME_ASSET, json.dumps(manifest.runtime, sort_keys=True))
        archive.writestr("classes.dex", b"dex\n035\x00")
    return path


# An element as (tag, {attribute local name: value}, depth-first parent tags).
_Element = tuple[str, dict[str, str], tuple[str, ...]]


def _text_elements(raw: bytes) -> list[_Element]:
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError:
        raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST") from None
    found: list[_Element] = []

    def visit(node: ElementTree.Element, parents: tuple[str, ...]) -> None:
        attributes = {key.rsplit("}", 1)[-1]: value for key, value in node.attrib.items()}
        found.append((node.tag, attributes, parents))
        for child in node:
            visit(child, parents + (node.tag,))

    visit(root, ())
    return found


def _binary_elements(raw: bytes) -> list[_Element]:
    """Walk the chunks of binary XML; keep start elements with their string attributes."""
    try:
        return _walk_binary(raw)
    except (struct.error, IndexError, UnicodeDecodeError):
        raise ApkError("INSTALL_PARSE_FAILED_BAD_MANIFEST") from None


def _walk_binary(raw: bytes) -> list[_Element]:
    _, header_size, total = struct.unpack_from("<HHI", raw, 0)
    offset = header_size
    strings: list[str] = []
    found: list[_Element] = []
    stack: list[str] = []
    while offset < min(total, len(raw)):
        chunk_type, chunk_header, chunk_size = struct.unpack_from("<HHI", raw, offset)
        if chunk_size == 0:
            break
        if chunk_type == _RES_STRING_POOL_TYPE:
            strings = _string_pool(raw, offset)
        elif chunk_type == _RES_XML_START_ELEMENT_TYPE:
            found.append(_start_element(raw, offset + chunk_header, strings, tuple(stack)))
            stack.append(found[-1][0])
        elif chunk_type == _RES_XML_START_ELEMENT_TYPE + 1 and stack:  # end element
            stack.pop()
        offset += chunk_size
    return found


def _string_pool(raw: bytes, offset: int) -> list[str]:
    _, header_size, _, count, _, flags, strings_start, _ = struct.unpack_from("<HHIIIIII", raw, offset)
    index_base = offset + header_size
    data_base = offset + strings_start
    utf8 = bool(flags & _UTF8_FLAG)
    result = []
    for index in range(count):
        (relative,) = struct.unpack_from("<I", raw, index_base + 4 * index)
        position = data_base + relative
        if utf8:
            position += 2 if raw[position] & 0x80 else 1  # UTF-16 length, skipped
            length = raw[position]
            if length & 0x80:
                length = ((length & 0x7F) << 8) | raw[position + 1]
                position += 1
            position += 1
            result.append(raw[position:position + length].decode("utf-8"))
        else:
            (length,) = struct.unpack_from("<H", raw, position)
            position += 2
            if length & 0x8000:
                (low,) = struct.unpack_from("<H", raw, position)
                length = ((length & 0x7FFF) << 16) | low
                position += 2
            result.append(raw[position:position + 2 * length].decode("utf-16-le"))
    return result


def _start_element(raw: bytes, offset: int, strings: list[str], parents: tuple[str, ...]) -> _Element:
    _, name_index, attribute_start, attribute_size, attribute_count = struct.unpack_from("<IIHHH", raw, offset)
    attributes: dict[str, str] = {}
    base = offset + attribute_start
    for index in range(attribute_count):
        _, attr_name, raw_value, _, _, data_type, data = struct.unpack_from(
            "<IIIHBBI", raw, base + index * attribute_size)
        name = strings[attr_name]
        if raw_value != 0xFFFFFFFF:
            attributes[name] = strings[raw_value]
        elif data_type == _TYPE_STRING:
            attributes[name] = strings[data]
        elif data_type == _TYPE_INT_BOOLEAN:
            attributes[name] = "true" if data else "false"
        else:
            attributes[name] = str(data)
    return strings[name_index], attributes, parents


def _manifest_from(elements: list[_Element], runtime: dict[str, object]) -> ApkManifest:
    manifest_attributes = next((attrs for tag, attrs, _ in elements if tag == "manifest"), None)
    if not manifest_attributes or not manifest_attributes.get("package"):
        raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED")
    permissions = tuple(attrs["name"] for tag, attrs, _ in elements
                        if tag == "uses-permission" and "name" in attrs)
    application = next((attrs for tag, attrs, _ in elements if tag == "application"), {})
    launcher = _launcher_activity(elements)
    try:
        version_code = int(manifest_attributes.get("versionCode", "1"))
    except ValueError:
        raise ApkError("INSTALL_PARSE_FAILED_MANIFEST_MALFORMED") from None
    return ApkManifest(
        package=manifest_attributes["package"],
        version_code=version_code,
        version_name=manifest_attributes.get("versionName", ""),
        debuggable=application.get("debuggable", "false") == "true",
        permissions=permissions,
        launcher_activity=launcher,
        runtime=runtime,
    )


def _launcher_activity(elements: list[_Element]) -> str | None:
    current_activity = None
    for tag, attrs, parents in elements:
        if tag in ("activity", "activity-alias"):
            current_activity = attrs.get("name")
        elif (tag == "category" and attrs.get("name") == "android.intent.category.LAUNCHER"
              and {"activity", "activity-alias"} & set(parents)):
            return current_activity
    return None
