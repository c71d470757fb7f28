"""Parsing a codebook: YAML read with line numbers, then validated into a Codebook.

In: a codebook file's bytes. Out: a Codebook (core.coding.codebook_model), or
`CodebookError("<file>:<line>: <problem>")` for the first problem found, so a research team
can fix it in their editor. The format is documented in docs/codebooks.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import yaml

from pipeline.core.coding.codebook_model import (
    BOUNDARIES,
    DEFAULT_PLACEHOLDERS,
    KINDS,
    SCOPES,
    Code,
    Codebook,
    CodebookError,
    Pattern,
)

# --------------------------------------------------------------------------- YAML with lines


class _LStr(str):
    line = 0


class _LDict(dict):
    line = 0
    key_lines: dict


class _LList(list):
    line = 0
    item_lines: list


# libyaml's parser when PyYAML was built with it (about 10x faster; same nodes, same marks)
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
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



def load_yaml(path: Path, raw: bytes):
    """The YAML of a codebook file, every string, mapping and list knowing its line."""
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



def parse_codebook(path: Path, data, version: str) -> Codebook:
    """Validate the YAML of one codebook (read by `load_yaml`) into a Codebook; `version` is
    the file's content hash. The first problem raises CodebookError('<file>:<line>: ...')."""
    ctx = _Ctx(path)
    if not isinstance(data, dict):
        ctx.fail(getattr(data, "line", 1), "a codebook must be a YAML mapping")
    ctx.mapping(data, 1, "codebook", _TOP_KEYS)
    framework = ctx.text(data, "framework", "codebook")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", framework):
        ctx.fail(data.key_lines["framework"], f"framework id {framework!r} must be snake_case")
    label = ctx.text(data, "label", "codebook", required=False, default=framework)
    defaults = _defaults(ctx, data)
    placeholders = _placeholders(ctx, data)
    dimensions, dim_labels = _dimensions(ctx, data)
    codes = _codes(ctx, data, framework, dimensions, defaults)
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


def _defaults(ctx: _Ctx, data: _LDict) -> dict:
    """The pattern kind and boundary a pattern takes when it names none."""
    defaults = {"kind": "phrase", "boundary": "word"}
    if "defaults" in data:
        d = ctx.mapping(
            data["defaults"], data.key_lines["defaults"], "defaults", ("kind", "boundary")
        )
        defaults["kind"] = ctx.choice(d, "kind", KINDS, "phrase", "defaults")
        defaults["boundary"] = ctx.choice(d, "boundary", BOUNDARIES, "word", "defaults")
    return defaults


def _placeholders(ctx: _Ctx, data: _LDict) -> str | None:
    """The regex of redaction placeholders (never evidence), or None for 'none'."""
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
    return placeholders


def _dimensions(ctx: _Ctx, data: _LDict) -> tuple[dict[str, str], dict[str, str]]:
    """dimension id -> definition, and dimension id -> label (the id when it has none)."""
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
    return dimensions, dim_labels


def _codes(ctx: _Ctx, data: _LDict, framework: str, dimensions: dict[str, str],
           defaults: dict) -> list[Code]:
    """The codes in file order; ids unique within the codebook."""
    if "codes" not in data:
        ctx.fail(data.line, "codebook has no 'codes'")
    codes_raw = data["codes"]
    if not isinstance(codes_raw, list) or not codes_raw:
        ctx.fail(data.key_lines["codes"], "codes must be a non-empty list")
    codes, seen = [], {}
    for item, line in zip(codes_raw, codes_raw.item_lines, strict=True):
        codes.append(_code(ctx, item, line, framework, dimensions, defaults, seen))
    return codes


def _code(ctx: _Ctx, item, line: int, framework: str, dimensions: dict[str, str],
          defaults: dict, seen: dict[str, int]) -> Code:
    """One code; `seen` (code id -> line) gathers the ids met so far."""
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
    return Code(
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
