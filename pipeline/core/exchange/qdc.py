"""Codebooks <-> REFI-QDA codebook files (`.qdc`, namespace urn:QDA-XML:codebook:1.0).

Export: one tree per framework, framework > category (our `dimension`) > code, the first two
levels not codable. A code's `Description` carries its meaning in labelled sections a person
can read in NVivo, ATLAS.ti, MAXQDA or QualCoder and this module can read back:

    <description>

    Definition: ...
    Use when: ...
    Not when: ...
    Examples:
    - ...
    Code id: <code_id>

Keywords (patterns, exclusions) and aliases are ours: they are not in a `.qdc`, and an import
keeps them from the YAML codebooks it merges into.

Reading one (`read_qdc`) is here too; merging it into our YAML codebooks is
`qdc_import`.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.core.coding.codebook import Codebook
from pipeline.core.exchange.guids import code_guid, dimension_guid, framework_guid
from pipeline.core.files import atomic_write_bytes

CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
ORIGIN = "survey-coding-pipeline"
CODE_SECTIONS = ("Definition", "Use when", "Not when", "Examples", "Code id")
_SECTION_FIELDS = {"Definition": "definition", "Use when": "use_when", "Not when": "not_when"}
_SECTION = re.compile(r"^(Definition|Use when|Not when|Examples|Code id):[ \t]?(.*)$")
FRAMEWORK_ID_LINE = "Framework id: "
CATEGORY_ID_LINE = "Category id: "


class QdcError(ValueError):
    """A file that is not a REFI-QDA codebook (message names the file)."""


# --------------------------------------------------------------------------------- export


def code_description(code) -> str:
    """A code's Description text: its description, then the labelled meaning sections."""
    parts = [code.description] if code.description else []
    sections = [f"{label}: {getattr(code, name)}" for label, name in _SECTION_FIELDS.items()
                if getattr(code, name)]
    if code.examples:
        sections.append("Examples:\n" + "\n".join(f"- {e}" for e in code.examples))
    sections.append(f"Code id: {code.code_id}")
    parts.append("\n".join(sections))
    return "\n\n".join(parts)


def parse_code_description(text: str) -> dict | None:
    """The fields of a Description written by `code_description`, or None when the text has
    none of its sections (a description written by another tool)."""
    lines = (text or "").splitlines()
    starts = [i for i, line in enumerate(lines) if _SECTION.match(line)]
    if not starts:
        return None
    out: dict = {"description": "\n".join(lines[:starts[0]]).strip(), "examples": ()}
    for k, i in enumerate(starts):
        label, first = _SECTION.match(lines[i]).groups()
        body = [first, *lines[i + 1:starts[k + 1] if k + 1 < len(starts) else len(lines)]]
        if label == "Examples":
            out["examples"] = tuple(b[2:].strip() for b in body if b.startswith("- "))
        elif label == "Code id":
            out["code_id"] = first.strip()
        else:
            out[_SECTION_FIELDS[label]] = "\n".join(body).strip()
    return out


def _with_id_line(text: str, line: str) -> str:
    return f"{text}\n\n{line}" if text else line


def split_id_line(text: str, prefix: str) -> tuple[str, str | None]:
    """(text without its trailing '<prefix><id>' line, the id or None)."""
    lines = (text or "").rstrip().splitlines()
    if lines and lines[-1].startswith(prefix):
        return "\n".join(lines[:-1]).strip(), lines[-1][len(prefix):].strip()
    return (text or "").strip(), None


def append_code_tree(parent: ET.Element, books: list[Codebook]) -> None:
    """framework > category > code elements under `parent` (a `Codes` element); shared by the
    `.qdc` and the `.qdpx` CodeBook (same element names in both namespaces)."""
    for book in books:
        fw = ET.SubElement(parent, "Code", guid=framework_guid(book.framework),
                           name=book.label, isCodable="false")
        ET.SubElement(fw, "Description").text = FRAMEWORK_ID_LINE + book.framework
        for dim, definition in book.dimensions.items():
            codes = [c for c in book.codes if c.dimension == dim]
            el = ET.SubElement(fw, "Code", guid=dimension_guid(book.framework, dim),
                               name=book.dimension_labels.get(dim, dim), isCodable="false")
            ET.SubElement(el, "Description").text = _with_id_line(definition,
                                                                  CATEGORY_ID_LINE + dim)
            for code in codes:
                c = ET.SubElement(el, "Code", guid=code_guid(book.framework, code.code_id),
                                  name=code.label, isCodable="true")
                ET.SubElement(c, "Description").text = code_description(code)


def xml_bytes(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                     xml_declaration=False)


def qdc_bytes(books: list[Codebook], origin: str = ORIGIN) -> bytes:
    """The codebooks as one REFI-QDA codebook document."""
    root = ET.Element("CodeBook", xmlns=CODEBOOK_NS, origin=origin)
    append_code_tree(ET.SubElement(root, "Codes"), books)
    return xml_bytes(root)


def write_qdc(books: list[Codebook], path: str | Path, origin: str = ORIGIN) -> Path:
    """Write `path` (atomically) and return it."""
    atomic_write_bytes(path, qdc_bytes(books, origin))
    return Path(path)


# --------------------------------------------------------------------------------- import


@dataclass
class QdcCode:
    guid: str
    name: str
    codable: bool
    description: str
    children: list[QdcCode] = field(default_factory=list)


@dataclass
class QdcFile:
    origin: str
    codes: list[QdcCode]
    sets: dict[str, tuple[str, str]]   # member code guid -> (set name, set description)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in el if _local(c.tag) == name), None)


def _read_code(el: ET.Element) -> QdcCode:
    desc = _child(el, "Description")
    return QdcCode(guid=(el.get("guid") or "").strip("{}").upper(), name=el.get("name") or "",
                   codable=(el.get("isCodable") or "true").strip().lower() in ("true", "1"),
                   description=(desc.text or "") if desc is not None else "",
                   children=[_read_code(c) for c in el if _local(c.tag) == "Code"])


def read_qdc(path: str | Path) -> QdcFile:
    """Parse a `.qdc`, a `.qdpx` (its project.qde's CodeBook) or a `.qde`; any namespace."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                qde = next((n for n in z.namelist() if n.lower().endswith(".qde")), None)
                if qde is None:
                    raise QdcError(f"{path}: a zip without a project.qde")
                root = ET.parse(io.BytesIO(z.read(qde))).getroot()
        else:
            root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise QdcError(f"{path}: not well-formed XML ({e})") from None
    origin = root.get("origin") or ""
    if _local(root.tag) == "Project":
        root = _child(root, "CodeBook")
        if root is None:
            raise QdcError(f"{path}: the project has no CodeBook")
    if _local(root.tag) != "CodeBook":
        raise QdcError(f"{path}: root element is <{_local(root.tag)}>, not <CodeBook>")
    codes_el = _child(root, "Codes")
    codes = [_read_code(c) for c in codes_el if _local(c.tag) == "Code"] if codes_el is not None \
        else []
    sets: dict[str, tuple[str, str]] = {}
    sets_el = _child(root, "Sets")
    for s in (sets_el if sets_el is not None else []):
        desc = _child(s, "Description")
        for m in s:
            if _local(m.tag) in ("MemberCode",):
                g = (m.get("guid") or m.get("targetGUID") or "").strip("{}").upper()
                sets.setdefault(g, (s.get("name") or "", (desc.text or "") if desc is not None
                                    else ""))
    return QdcFile(origin=origin, codes=codes, sets=sets)
