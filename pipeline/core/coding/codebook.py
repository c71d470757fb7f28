"""Codebooks: one YAML file per framework, loaded into frozen, versioned objects.

In: codebook files or folders (codebooks/). Out: Codebook objects (core.coding.codebook_model,
parsed and validated by core.coding.codebook_parse), coding.codebook_codes as a frame, the
meaning gaps the suggester reports and the codes that always fire together. The format is
documented in docs/codebooks.md. Every problem in a codebook raises
`CodebookError("<file>:<line>: <problem>")` so a research team can fix it in their editor.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.core.coding.codebook_model import (
    BOUNDARIES,
    DEFAULT_PLACEHOLDERS,
    KINDS,
    MEANING_FIELDS,
    MIN_EXAMPLES,
    SCOPES,
    Code,
    Codebook,
    CodebookError,
    Pattern,
)
from pipeline.core.coding.codebook_parse import load_yaml, parse_codebook

__all__ = [
    "BOUNDARIES",
    "CODES_COLUMNS",
    "CO_FIRING_COLUMNS",
    "CO_FIRING_MIN_ANSWERS",
    "DEFAULT_PLACEHOLDERS",
    "KINDS",
    "MEANING_FIELDS",
    "MIN_EXAMPLES",
    "SCOPES",
    "Code",
    "Codebook",
    "CodebookError",
    "Pattern",
    "co_firing_groups",
    "codebook_codes_frame",
    "codebook_files",
    "load_codebook",
    "load_codebooks",
    "meaning_gaps",
]


def load_codebook(path) -> Codebook:
    """Load and validate one codebook YAML file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise CodebookError(f"{path}:0: cannot read: {e.strerror}") from None
    version = hashlib.sha256(raw).hexdigest()[:12]
    return parse_codebook(path, load_yaml(path, raw), version)



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
