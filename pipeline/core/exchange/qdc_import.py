"""Merging a REFI-QDA codebook (`.qdc`, or a `.qdpx`'s codebook) into our YAML codebooks.

Import (`import_qdc`): any `.qdc` (or a `.qdpx`/`project.qde`'s CodeBook). Ours is recognised
by its sections and GUIDs; another tool's tree is read as: a top-level code with grandchildren
is a framework (its children categories, every codable code below them a code); a top-level
code with children only is a category of the default framework; a top-level leaf code belongs
to the category named by the first code group (`Set`) it is a member of, else to
'uncategorised'. Codes are matched to the existing YAML by id, then GUID, then label; a new
code gets its label as its one keyword phrase (listed in the report to review).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from pipeline.core.coding.codebook import (
    DEFAULT_PLACEHOLDERS,
    Codebook,
    Pattern,
    load_codebook,
    load_codebooks,
)
from pipeline.core.exchange.guids import code_guid, dimension_guid, framework_guid
from pipeline.core.exchange.qdc import (
    CATEGORY_ID_LINE,
    FRAMEWORK_ID_LINE,
    QdcCode,
    QdcFile,
    parse_code_description,
    read_qdc,
    split_id_line,
)
from pipeline.core.files import atomic_write_text

UNCATEGORISED = "uncategorised"


def slug(text: str) -> str:
    """A snake_case id from a name ('Code 1.2' -> 'code_1_2')."""
    s = re.sub(r"[^a-z0-9]+", "_", (text or "").casefold()).strip("_")
    if not s:
        s = "code"
    return s if s[0].isalpha() else f"c_{s}"


@dataclass
class ImportReport:
    frameworks: list[str] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)     # existing codes the .qdc changed
    unchanged: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)       # new codes: keyword = their label
    kept: list[str] = field(default_factory=list)        # in the YAML, not in the .qdc
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{len(self.frameworks)} framework(s): {', '.join(self.frameworks)}",
               f"codes: {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
               f"{len(self.added)} new, {len(self.kept)} kept from the YAML (not in the file)"]
        out += [f"new code {c}: its keyword is its label; review its patterns"
                for c in self.added]
        out += self.notes
        out += [f"wrote {p}" for p in self.written]
        return out


@dataclass
class _Frame:
    """One framework being assembled: YAML-ready dimensions and codes."""
    framework: str
    label: str
    dimensions: dict[str, dict] = field(default_factory=dict)
    codes: dict[str, dict] = field(default_factory=dict)
    placeholders: str | None = DEFAULT_PLACEHOLDERS


def _existing_index(books: list[Codebook]):
    by_guid, by_label = {}, {}
    for b in books:
        by_guid[framework_guid(b.framework)] = ("framework", b.framework, None)
        for d in b.dimensions:
            by_guid[dimension_guid(b.framework, d)] = ("dimension", b.framework, d)
        for c in b.codes:
            by_guid[code_guid(b.framework, c.code_id)] = ("code", b.framework, c.code_id)
            by_label.setdefault((b.framework, c.label.casefold()), c.code_id)
    return by_guid, by_label


def _code_fields(node: QdcCode) -> dict:
    parsed = parse_code_description(node.description)
    if parsed is None:     # another tool's free text: it is the code's definition
        return {"label": node.name, "definition": node.description.strip()}
    return {"label": node.name, **parsed}


def _leaves(node: QdcCode) -> list[QdcCode]:
    """Every codable code at or below `node`'s children (deeper levels are flattened)."""
    out = []
    for child in node.children:
        if child.codable:
            out.append(child)
        out += _leaves(child)
    return out


def import_codebook(qdc: QdcFile, existing: list[Codebook], default_framework: str,
                    source_name: str = "") -> tuple[list[dict], ImportReport]:
    """Merge a parsed `.qdc` into the existing codebooks -> (YAML documents, one per framework
    touched, and the report). Existing frameworks not in the file are not returned."""
    report = ImportReport()
    by_guid, by_label = _existing_index(existing)
    books = {b.framework: b for b in existing}
    frames: dict[str, _Frame] = {}
    all_code_ids = {c.code_id for b in existing for c in b.codes}

    def frame_for(fw_id: str, label: str | None) -> _Frame:
        if fw_id not in frames:
            book = books.get(fw_id)
            f = _Frame(fw_id, label or (book.label if book else fw_id))
            if book:
                f.placeholders = book.placeholders
                for d, definition in book.dimensions.items():
                    f.dimensions[d] = {"label": book.dimension_labels.get(d, d),
                                       "definition": definition}
            frames[fw_id] = f
        elif label:
            frames[fw_id].label = label
        return frames[fw_id]

    def dimension_for(f: _Frame, node: QdcCode | None, name: str, definition: str) -> str:
        text, dim = (split_id_line(node.description, CATEGORY_ID_LINE) if node is not None
                     else (definition, None))
        if dim is None and node is not None and node.guid in by_guid:
            kind, fw, d = by_guid[node.guid]
            dim = d if kind == "dimension" and fw == f.framework else None
        dim = dim or next((d for d, v in f.dimensions.items()
                           if v["label"].casefold() == name.casefold()), None) or slug(name)
        f.dimensions[dim] = {"label": name or dim, "definition": text or definition or name}
        return dim

    def add_code(f: _Frame, dim: str, node: QdcCode) -> None:
        fields = _code_fields(node)
        code_id = fields.pop("code_id", None)
        if code_id is None and node.guid in by_guid and by_guid[node.guid][0] == "code":
            code_id = by_guid[node.guid][2]
        code_id = code_id or by_label.get((f.framework, node.name.casefold()))
        if code_id is None:
            code_id, n = slug(node.name), 2
            while code_id in all_code_ids or code_id in f.codes:
                code_id, n = f"{slug(node.name)}_{n}", n + 1
        all_code_ids.add(code_id)
        f.codes[code_id] = {"dimension": dim, **fields}

    origin = qdc.origin or "another tool"
    for top in qdc.codes:
        has_grandchildren = any(c.children for c in top.children)
        if has_grandchildren:
            text, fw_id = split_id_line(top.description, FRAMEWORK_ID_LINE)
            if fw_id is None and top.guid in by_guid and by_guid[top.guid][0] == "framework":
                fw_id = by_guid[top.guid][1]
            f = frame_for(fw_id or slug(top.name), top.name)
            for cat in top.children:
                if not cat.children:
                    dim = dimension_for(f, None, UNCATEGORISED.capitalize(),
                                        f"codes imported from {origin} without a category")
                    add_code(f, dim, cat)
                    continue
                dim = dimension_for(f, cat, cat.name, "")
                for leaf in _leaves(cat):
                    add_code(f, dim, leaf)
                if any(g.children for g in cat.children):
                    report.notes.append(f"{cat.name!r}: codes below the code level were "
                                        "flattened into the category")
        else:
            f = frame_for(default_framework, None)
            if default_framework not in books and f.label == default_framework:
                f.label = f"Codebook from {origin}"
            if top.children:
                dim = dimension_for(f, top, top.name, "")
                for leaf in _leaves(top):
                    add_code(f, dim, leaf)
            else:
                set_name, set_desc = qdc.sets.get(top.guid, ("", ""))
                name = set_name or UNCATEGORISED.capitalize()
                dim = dimension_for(f, None, name, set_desc or
                                    f"codes imported from {origin} without a category")
                add_code(f, dim, top)

    docs = []
    for fw_id, f in frames.items():
        report.frameworks.append(fw_id)
        docs.append(_yaml_doc(f, books.get(fw_id), report, source_name))
    return docs, report


def _pattern_yaml(p: Pattern, exclusion: bool):
    if p.kind == "phrase" and p.boundary == "word" and p.scope == "hit":
        return p.text
    out = {p.kind: p.text}
    if p.boundary != "word":
        out["boundary"] = p.boundary
    if exclusion and p.scope != "hit":
        out["scope"] = p.scope
    return out


_MEANING_KEYS = ("description", "definition", "use_when", "not_when")


def _yaml_only(prev) -> dict:
    """What only the YAML holds for an existing code: keywords, exclusions, aliases."""
    out = {"patterns": [_pattern_yaml(p, False) for p in prev.patterns]}
    if prev.exclusions:
        out["exclude"] = [_pattern_yaml(p, True) for p in prev.exclusions]
    if prev.aliases:
        out["aliases"] = list(prev.aliases)
    return out


def _code_item(code_id: str, dimension: str, label: str, meaning: dict, examples) -> dict:
    item = {"id": code_id, "dimension": dimension, "label": label}
    item.update({k: meaning[k] for k in _MEANING_KEYS if meaning.get(k)})
    if examples:
        item["examples"] = list(examples)
    return item


def _yaml_doc(f: _Frame, book: Codebook | None, report: ImportReport, source: str) -> dict:
    old = {c.code_id: c for c in book.codes} if book else {}
    codes = []
    for code_id, new in f.codes.items():
        prev = old.get(code_id)
        meaning = {k: new.get(k, getattr(prev, k, "") if prev else "") for k in _MEANING_KEYS}
        examples = new.get("examples") or (prev.examples if prev else ())
        item = _code_item(code_id, new["dimension"], new["label"], meaning, examples)
        if prev is None:
            item["patterns"] = [new["label"]]
            report.added.append(code_id)
        else:
            item.update(_yaml_only(prev))
            same = (prev.label == item["label"] and prev.dimension == item["dimension"]
                    and all(getattr(prev, k) == meaning[k] for k in _MEANING_KEYS)
                    and tuple(prev.examples) == tuple(examples))
            (report.unchanged if same else report.updated).append(code_id)
        codes.append(item)
    for code_id, prev in old.items():
        if code_id not in f.codes:
            report.kept.append(code_id)
            meaning = {k: getattr(prev, k) for k in _MEANING_KEYS}
            codes.append({**_code_item(code_id, prev.dimension, prev.label, meaning,
                                       prev.examples), **_yaml_only(prev)})
    used = {c["dimension"] for c in codes}
    doc = {"framework": f.framework, "label": f.label,
           "defaults": {"kind": "phrase", "boundary": "word"}}
    if f.placeholders != DEFAULT_PLACEHOLDERS:
        doc["placeholders"] = f.placeholders if f.placeholders is not None else "none"
    doc["dimensions"] = {d: v for d, v in f.dimensions.items() if d in used}
    doc["codes"] = codes
    doc["_source"] = source
    return doc


def _plain(obj):
    """Built-in types only (the codebook loader's strings carry their line number)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return str(obj) if isinstance(obj, str) else obj


def codebook_yaml(doc: dict) -> str:
    """A YAML codebook (docs/codebooks.md format) from a document of `import_codebook`."""
    body = _plain({k: v for k, v in doc.items() if not k.startswith("_")})
    head = (f"# Imported from {doc['_source']} by `survey-pipeline codebook import-qdc`: codes, "
            "categories and\n# meaning from the file; keywords (patterns, exclude) and aliases "
            "kept from the YAML codebook.\n") if doc.get("_source") else ""
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100,
                                 default_flow_style=False)


def import_qdc(qdc_path: str | Path, out_dir: str | Path, existing_paths=None,
               framework: str | None = None) -> ImportReport:
    """Read `qdc_path`, merge it into the codebooks under `existing_paths` (files or folders;
    None: start from nothing) and write one `<framework>.yaml` per framework it holds into
    `out_dir`. Every file written is loaded back with the codebook loader (an invalid result
    raises CodebookError and the file is left for inspection)."""
    qdc_path = Path(qdc_path)
    existing = load_codebooks(existing_paths) if existing_paths else []
    parsed = read_qdc(qdc_path)
    default = framework or slug(qdc_path.stem)
    docs, report = import_codebook(parsed, existing, default, qdc_path.name)
    out = Path(out_dir)
    for doc in docs:
        path = out / f"{doc['framework']}.yaml"
        atomic_write_text(path, codebook_yaml(doc))
        load_codebook(path)
        report.written.append(path)
    return report
