"""Codebooks: one YAML file per framework, loaded into frozen, versioned objects.

The format is documented in docs/codebooks.md. Every problem in a codebook raises
`CodebookError("<file>:<line>: <problem>")` so a research team can fix it in their editor.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

KINDS = ("phrase", "stem", "regex")
BOUNDARIES = ("word", "start", "none")
SCOPES = ("hit", "answer")
# Redaction placeholders such as "[External Coach name]" or "[Name]" never count as evidence.
DEFAULT_PLACEHOLDERS = r"\[[^\[\]\n]{1,80}\]"


class CodebookError(ValueError):
    """An invalid codebook. The message is '<file>:<line>: <problem>'."""


@dataclass(frozen=True)
class Pattern:
    kind: str  # 'phrase' | 'stem' | 'regex'
    text: str  # as written in the codebook
    boundary: str = "word"  # 'word' | 'start' | 'none'
    scope: str = (
        "hit"  # exclusions only: veto overlapping hits ('hit') or the whole code ('answer')
    )
    line: int = 0  # line in the codebook file (0 = unknown)

    def to_dict(self) -> dict:
        out = {"kind": self.kind, "text": self.text, "boundary": self.boundary}
        if self.scope != "hit":
            out["scope"] = self.scope
        return out


@dataclass(frozen=True)
class Code:
    framework: str
    dimension: str
    code_id: str
    label: str
    description: str
    patterns: tuple[Pattern, ...]
    exclusions: tuple[Pattern, ...] = ()
    aliases: tuple[str, ...] = ()  # other words the study reports this code under
    line: int = 0
    # Meaning (MacQueen et al.'s codebook structure), read by the suggester and coder sheets.
    definition: str = ""
    use_when: str = ""
    not_when: str = ""
    examples: tuple[str, ...] = ()


@dataclass(frozen=True)
class Codebook:
    framework: str
    label: str
    path: str
    version: str  # first 12 hex digits of sha256(file bytes)
    dimensions: dict[str, str]  # dimension id -> definition
    codes: tuple[Code, ...]
    dimension_labels: dict[str, str] = field(default_factory=dict)
    placeholders: str | None = DEFAULT_PLACEHOLDERS  # regex of redaction placeholders, or None


# --------------------------------------------------------------------------- YAML with lines


class _LStr(str):
    line = 0


class _LDict(dict):
    line = 0
    key_lines: dict


class _LList(list):
    line = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    pass


def _construct_str(loader, node):
    s = _LStr(loader.construct_scalar(node))
    s.line = node.start_mark.line + 1
    return s


def _construct_map(loader, node):
    loader.flatten_mapping(node)
    d = _LDict()
    d.line = node.start_mark.line + 1
    d.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in d:
            raise CodebookError(f"{loader.name}:{line}: duplicate key {key!r}")
        d[key] = loader.construct_object(value_node, deep=True)
        d.key_lines[key] = line
    return d


def _construct_seq(loader, node):
    items = _LList(loader.construct_object(n, deep=True) for n in node.value)
    items.line = node.start_mark.line + 1
    items.item_lines = [n.start_mark.line + 1 for n in node.value]
    return items


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)
_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def _load_yaml(path: Path, raw: bytes):
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CodebookError(f"{path}:1: not UTF-8 text ({e.reason})") from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (e.context, e.problem) if p)
        raise CodebookError(f"{path}:{line}: YAML syntax error: {problem}") from None
    except yaml.YAMLError as e:
        raise CodebookError(f"{path}:1: YAML error: {e}") from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------- validation


class _Ctx:
    def __init__(self, path: Path):
        self.path = path

    def fail(self, line: int, problem: str):
        raise CodebookError(f"{self.path}:{line or 1}: {problem}")

    def mapping(self, value, line: int, what: str, allowed: Iterable[str]) -> _LDict:
        if not isinstance(value, dict):
            self.fail(getattr(value, "line", line), f"{what} must be a mapping")
        unknown = [k for k in value if k not in allowed]
        if unknown:
            k = unknown[0]
            self.fail(
                value.key_lines.get(k, value.line),
                f"unknown key {k!r} in {what} (allowed: {', '.join(allowed)})",
            )
        return value

    def text(self, d: _LDict, key: str, what: str, required=True, default="") -> str:
        if key not in d:
            if required:
                self.fail(d.line, f"{what} has no {key!r}")
            return default
        v = d[key]
        if not isinstance(v, str) or (required and not v.strip()):
            self.fail(d.key_lines[key], f"{what}: {key!r} must be a non-empty string")
        return str(v).strip()

    def choice(self, d: _LDict, key: str, options, default: str, what: str) -> str:
        if key not in d:
            return default
        v = d[key]
        if v not in options:
            self.fail(
                d.key_lines[key], f"{what}: {key} must be one of {', '.join(options)}, not {v!r}"
            )
        return str(v)


_PATTERN_KEYS = ("kind", "text", "boundary", "scope", *KINDS)
_CODE_KEYS = ("id", "dimension", "label", "description", "definition", "use_when", "not_when",
              "examples", "patterns", "exclude", "aliases")
MEANING_FIELDS = ("definition", "use_when", "not_when")
MIN_EXAMPLES = 4
_TOP_KEYS = ("framework", "label", "description", "defaults", "placeholders", "dimensions", "codes")


def _pattern(ctx: _Ctx, item, line: int, defaults: dict, code_id: str, exclusion: bool) -> Pattern:
    what = f"code {code_id!r}: " + ("exclusion" if exclusion else "pattern")
    kind, boundary, scope = defaults["kind"], defaults["boundary"], "hit"
    if isinstance(item, dict):
        ctx.mapping(item, line, what, _PATTERN_KEYS)
        given = [k for k in KINDS if k in item]
        if len(given) > 1 or (given and "text" in item):
            ctx.fail(item.line, f"{what}: give one of text/phrase/stem/regex")
        if given:
            kind, key = given[0], given[0]
        else:
            kind, key = ctx.choice(item, "kind", KINDS, kind, what), "text"
        text = item.get(key)
        line = item.key_lines.get(key, item.line)
        boundary = ctx.choice(item, "boundary", BOUNDARIES, boundary, what)
        scope = ctx.choice(item, "scope", SCOPES, scope, what)
        if scope != "hit" and not exclusion:
            ctx.fail(item.key_lines["scope"], f"{what}: scope applies to exclusions only")
    else:
        text = item
    if not isinstance(text, str):
        ctx.fail(line, f"{what}: pattern must be a string, not {text!r} (quote it in YAML)")
    if not text.strip():
        ctx.fail(line, f"{what}: empty pattern")
    text = str(text) if kind == "regex" else str(text).strip()
    if kind == "regex":
        try:
            compiled = re.compile(text, re.IGNORECASE)
        except re.error as e:
            ctx.fail(line, f"{what}: invalid regex {text!r}: {e.msg} at position {e.pos}")
        if compiled.match(""):
            ctx.fail(line, f"{what}: regex {text!r} matches the empty string")
    elif not re.search(r"\w", text):
        ctx.fail(line, f"{what}: {text!r} has no letters or digits to match")
    return Pattern(kind=kind, text=text, boundary=boundary, scope=scope, line=line)


def _patterns(ctx, code: _LDict, key: str, defaults, code_id, exclusion) -> tuple[Pattern, ...]:
    if key not in code:
        if exclusion:
            return ()
        ctx.fail(code.line, f"code {code_id!r} has no patterns")
    items = code[key]
    line = code.key_lines[key]
    if items is None and not exclusion:
        ctx.fail(line, f"code {code_id!r}: empty pattern list")
    if items is None:
        return ()
    if not isinstance(items, list):
        ctx.fail(line, f"code {code_id!r}: {key} must be a list")
    if not items and not exclusion:
        ctx.fail(line, f"code {code_id!r}: empty pattern list")
    out, seen = [], {}
    for item, item_line in zip(items, items.item_lines, strict=True):
        p = _pattern(ctx, item, item_line, defaults, code_id, exclusion)
        if (p.kind, p.text) in seen:
            ctx.fail(p.line, f"code {code_id!r}: duplicate {p.kind} pattern {p.text!r}")
        seen[(p.kind, p.text)] = p.line
        out.append(p)
    return tuple(out)


def _examples(ctx: _Ctx, code: _LDict, what: str) -> tuple[str, ...]:
    """Example answers: a list of distinct non-empty strings."""
    if "examples" not in code:
        return ()
    items, line = code["examples"], code.key_lines["examples"]
    if not isinstance(items, list):
        ctx.fail(line, f"{what}: examples must be a list of strings")
    out: dict[str, int] = {}
    for item, item_line in zip(items, items.item_lines, strict=True):
        if not isinstance(item, str) or not item.strip():
            ctx.fail(item_line, f"{what}: example must be a non-empty string, not {item!r}")
        text = " ".join(item.split())
        if text.casefold() in out:
            ctx.fail(item_line, f"{what}: duplicate example {text!r} (line {out[text.casefold()]})")
        out[text.casefold()] = item_line
    return tuple(" ".join(i.split()) for i in items)


def meaning_gaps(codebooks) -> list[str]:
    """'file:line: problem' for each code whose meaning is incomplete (no definition, use/not-use
    rule, or fewer than MIN_EXAMPLES examples). A keyword-only codebook is valid; these gaps only
    mean the suggester has less to go on."""
    gaps = []
    for book in codebooks:
        for c in book.codes:
            missing = [f for f in MEANING_FIELDS if not getattr(c, f)]
            if len(c.examples) < MIN_EXAMPLES:
                missing.append(f"examples ({len(c.examples)} of {MIN_EXAMPLES})")
            if missing:
                gaps.append(f"{book.path}:{c.line}: code {c.code_id!r} lacks {', '.join(missing)}")
    return gaps


def _parse(path: Path, data, version: str) -> Codebook:
    ctx = _Ctx(path)
    if not isinstance(data, dict):
        ctx.fail(getattr(data, "line", 1), "a codebook must be a YAML mapping")
    ctx.mapping(data, 1, "codebook", _TOP_KEYS)
    framework = ctx.text(data, "framework", "codebook")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", framework):
        ctx.fail(data.key_lines["framework"], f"framework id {framework!r} must be snake_case")
    label = ctx.text(data, "label", "codebook", required=False, default=framework)

    defaults = {"kind": "phrase", "boundary": "word"}
    if "defaults" in data:
        d = ctx.mapping(
            data["defaults"], data.key_lines["defaults"], "defaults", ("kind", "boundary")
        )
        defaults["kind"] = ctx.choice(d, "kind", KINDS, "phrase", "defaults")
        defaults["boundary"] = ctx.choice(d, "boundary", BOUNDARIES, "word", "defaults")

    placeholders: str | None = DEFAULT_PLACEHOLDERS
    if "placeholders" in data:
        ph, line = data["placeholders"], data.key_lines["placeholders"]
        if ph is None or ph == "none":
            placeholders = None
        elif isinstance(ph, str):
            try:
                re.compile(ph)
            except re.error as e:
                ctx.fail(line, f"placeholders: invalid regex {ph!r}: {e.msg}")
            placeholders = str(ph)
        else:
            ctx.fail(line, "placeholders must be a regex string or 'none'")

    if "dimensions" not in data:
        ctx.fail(data.line, "codebook has no 'dimensions'")
    dims_raw = data["dimensions"]
    ctx.mapping(dims_raw, data.key_lines["dimensions"], "dimensions", list(dims_raw or {}))
    if not dims_raw:
        ctx.fail(data.key_lines["dimensions"], "codebook has no dimensions")
    dimensions, dim_labels = {}, {}
    for dim_id, spec in dims_raw.items():
        line = dims_raw.key_lines[dim_id]
        if not isinstance(dim_id, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", dim_id):
            ctx.fail(line, f"dimension id {dim_id!r} must be snake_case")
        if isinstance(spec, str):
            dimensions[dim_id], dim_labels[dim_id] = spec.strip(), dim_id
        else:
            ctx.mapping(spec, line, f"dimension {dim_id!r}", ("label", "definition"))
            dimensions[dim_id] = ctx.text(spec, "definition", f"dimension {dim_id!r}")
            dim_labels[dim_id] = ctx.text(spec, "label", f"dimension {dim_id!r}", False, dim_id)

    if "codes" not in data:
        ctx.fail(data.line, "codebook has no 'codes'")
    codes_raw = data["codes"]
    if not isinstance(codes_raw, list) or not codes_raw:
        ctx.fail(data.key_lines["codes"], "codes must be a non-empty list")
    codes, seen = [], {}
    for item, line in zip(codes_raw, codes_raw.item_lines, strict=True):
        ctx.mapping(item, line, "code", _CODE_KEYS)
        code_id = ctx.text(item, "id", "code")
        id_line = item.key_lines["id"]
        if not re.fullmatch(r"[a-z][a-z0-9_]*", code_id):
            ctx.fail(id_line, f"code id {code_id!r} must be snake_case")
        if code_id in seen:
            ctx.fail(
                id_line, f"duplicate code id {code_id!r} (first defined on line {seen[code_id]})"
            )
        seen[code_id] = id_line
        dim = ctx.text(item, "dimension", f"code {code_id!r}")
        if dim not in dimensions:
            ctx.fail(
                item.key_lines["dimension"],
                f"code {code_id!r}: unknown dimension {dim!r} (known: {', '.join(dimensions)})",
            )
        aliases = item.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            ctx.fail(
                item.key_lines.get("aliases", line),
                f"code {code_id!r}: aliases must be a list of strings",
            )
        what = f"code {code_id!r}"
        codes.append(
            Code(
                framework=framework,
                dimension=dim,
                code_id=code_id,
                label=ctx.text(item, "label", f"code {code_id!r}", False, code_id),
                description=ctx.text(item, "description", f"code {code_id!r}", False, ""),
                patterns=_patterns(ctx, item, "patterns", defaults, code_id, False),
                exclusions=_patterns(ctx, item, "exclude", defaults, code_id, True),
                aliases=tuple(str(a) for a in aliases),
                line=id_line,
                definition=ctx.text(item, "definition", what, False, ""),
                use_when=ctx.text(item, "use_when", what, False, ""),
                not_when=ctx.text(item, "not_when", what, False, ""),
                examples=_examples(ctx, item, what),
            )
        )
    return Codebook(
        framework=framework,
        label=label,
        path=str(path),
        version=version,
        dimensions=dimensions,
        codes=tuple(codes),
        dimension_labels=dim_labels,
        placeholders=placeholders,
    )


# --------------------------------------------------------------------------- public API


def load_codebook(path) -> Codebook:
    """Load and validate one codebook YAML file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CodebookError(f"{path}:0: cannot read: {e.strerror}") from None
    version = hashlib.sha256(raw).hexdigest()[:12]
    return _parse(path, _load_yaml(path, raw), version)


def codebook_files(paths) -> list[Path]:
    """Each path is a YAML file or a folder of *.yaml / *.yml files (sorted by name)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
            if not found:
                raise CodebookError(f"{p}:0: folder has no *.yaml codebooks")
            files.extend(found)
        else:
            files.append(p)
    return files


def load_codebooks(paths) -> list[Codebook]:
    """Load every codebook under `paths`; code ids and frameworks must be unique across all."""
    books = [load_codebook(f) for f in codebook_files(paths)]
    seen_codes: dict[str, tuple[str, int]] = {}
    seen_frameworks: dict[str, str] = {}
    for book in books:
        if book.framework in seen_frameworks:
            raise CodebookError(
                f"{book.path}:1: duplicate framework {book.framework!r} "
                f"(also in {seen_frameworks[book.framework]})"
            )
        seen_frameworks[book.framework] = book.path
        for code in book.codes:
            if code.code_id in seen_codes:
                other, line = seen_codes[code.code_id]
                raise CodebookError(
                    f"{book.path}:{code.line}: duplicate code id {code.code_id!r} "
                    f"(already defined in {other}:{line})"
                )
            seen_codes[code.code_id] = (book.path, code.line)
    return books


CODES_COLUMNS = [
    "framework",
    "dimension",
    "code_id",
    "label",
    "description",
    "patterns",
    "codebook_version",
    "dimension_label",
]


def codebook_codes_frame(codebooks):
    """The loaded codebooks as one table: a row per code, patterns as JSON text."""
    import pandas as pd

    rows = [
        {
            "framework": c.framework,
            "dimension": c.dimension,
            "code_id": c.code_id,
            "label": c.label,
            "description": c.description,
            "patterns": json.dumps(
                [p.to_dict() for p in c.patterns]
                + [{**p.to_dict(), "exclude": True} for p in c.exclusions],
                ensure_ascii=False,
            ),
            "codebook_version": book.version,
            "dimension_label": book.dimension_labels.get(c.dimension, c.dimension),
        }
        for book in codebooks
        for c in book.codes
    ]
    return pd.DataFrame(rows, columns=CODES_COLUMNS)


CO_FIRING_MIN_ANSWERS = 3
CO_FIRING_COLUMNS = ["question_id", "group", "framework", "code_id", "n_answers"]


def co_firing_groups(applications, min_answers: int = CO_FIRING_MIN_ANSWERS):
    """Codes that always fire together: per question, the codes applied to exactly the same
    answers (at least `min_answers` of them). `applications`: one row per (answer, code)
    with answer_id, question_id, framework, code_id (e.g. the counted final codes). Returns a
    row per code of each group (CO_FIRING_COLUMNS); `group` names the group by its codes
    ("framework/code+framework/code"), the same in every question. Two such codes are one
    code to the reader: the report shows them once with their aliases, and
    `survey-pipeline codebook check --warehouse` flags them."""
    import pandas as pd

    rows = []
    apps = applications.drop_duplicates(["question_id", "answer_id", "framework", "code_id"])
    for question, frame in apps.groupby("question_id", sort=True):
        by_answers: dict[frozenset, list[tuple[str, str]]] = {}
        for (framework, code_id), g in frame.groupby(["framework", "code_id"], sort=True):
            answers = frozenset(g["answer_id"])
            if len(answers) >= min_answers:
                by_answers.setdefault(answers, []).append((framework, code_id))
        for answers, codes in by_answers.items():
            if len(codes) > 1:
                name = "+".join(f"{f}/{c}" for f, c in codes)
                rows += [(question, name, f, c, len(answers)) for f, c in codes]
    out = pd.DataFrame(rows, columns=CO_FIRING_COLUMNS)
    return out.sort_values(["question_id", "group", "code_id"], ignore_index=True)
