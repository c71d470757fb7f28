"""The table catalog: every warehouse table and view, declared once.

Over 400 lines on purpose: it is declarations (one entry per table, its columns and rules),
and one table per file would scatter the catalog that exists to be read in one place.

Each table has its schema-qualified name, a description, its columns (DuckDB type, nullability,
a one-line meaning, allowed values and the value rules a contract enforces), its key (unique
column sets) and its partition column (`school_year` where the writing asset replaces one
year's slice). Everything else is generated from it:

- the DDL `warehouse.ensure_tables` runs (`ddl`, `warehouse.TABLES`),
- empty typed frames (`empty_frame`, `warehouse.empty_frame`),
- one pandera model per table (`model`; `pipeline/schemas.py` re-exports them and the blocking
  contract checks of `pipeline/defs/contracts.py` run them on the written tables),
- warehouse/README.md's column tables (`python -m pipeline.core.warehouse.catalog --markdown`; a test
  checks the README contains that output).

Allowed values reuse the constants of the modules whose code produces them. This module never
imports Dagster, nor `warehouse` (which imports it); pandera is imported only to build models.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import cache

import pandas as pd

from pipeline.core.ingest.exports import READER_KINDS
from pipeline.core.ingest.ids import QUESTION_IDS
from pipeline.core.ingest.staging import ROLE_VALUES
from pipeline.core.marts.marts import CODING_SOURCES, COUNTED
from pipeline.core.marts.marts import LEVELS as MART_LEVELS
from pipeline.core.privacy.redact import COACH_PLACEHOLDER, STAFF_PLACEHOLDER
from pipeline.core.reconciliation.agreement import LEVELS as AGREEMENT_LEVELS
from pipeline.core.reconciliation.final_codes import PROVENANCES
from pipeline.core.reconciliation.queue import APPLY, DO_NOT_APPLY
from pipeline.core.suggest.quality import LEVELS as QUALITY_LEVELS
from pipeline.core.suggest.suggester import SOURCES as SUGGESTION_SOURCES

# Values the code writes as literals (no constant to import): declared here, once.
CODER_KINDS = ("keyword", "human")
FILE_STATUSES = ("loaded", "unreadable", "skipped", "refused")
RETIREMENT_TRIGGERS = ("landing folder removed", "survey-pipeline year retire")
QUARANTINE_STAGES = ("read", "stage")
QUARANTINE_LEVELS = ("file", "row", "cell")
UNIT_BASES = ("listed", "session")
CODER_DECISIONS = ("applied", "not applied", "not coded")
TESTS = ("chi2", "fisher")
EVALUATIONS = ("stored", "school_grouped_cv")
QUALITY_SOURCES = (*SUGGESTION_SOURCES, "mixed")

SCHOOL_YEAR = r"^\d{4}-\d{2}$"
SHA256 = r"^[0-9a-f]{64}$"
ANSWER_ID = r"^A[0-9a-f]{12}$"
CODE_ID = r"^[a-z][a-z0-9_]*$"

DUCKDB_TYPES = ("VARCHAR", "JSON", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    nullable: bool = True
    allowed: tuple | None = None          # the only values (nulls aside, when nullable)
    pattern: str | None = None             # regex every value matches
    startswith: str | None = None
    min_length: int | None = None
    ge: float | None = None
    le: float | None = None
    # the contract may be stricter than the DDL: False = no nulls in the written rows although
    # the column is nullable in DuckDB (kept from the hand-written models)
    contract_nullable: bool | None = None

    def __post_init__(self):
        if self.type not in DUCKDB_TYPES:
            raise ValueError(f"{self.name}: unknown DuckDB type {self.type}")

    @property
    def null_ok(self) -> bool:
        return self.nullable if self.contract_nullable is None else self.contract_nullable

    def rules(self) -> list[str]:
        """The value rules, in words (README and docs)."""
        out = []
        if self.allowed is not None:
            out.append("one of " + ", ".join(f"`{v}`" for v in self.allowed))
        if self.pattern:
            out.append(f"matches `{self.pattern}`")
        if self.startswith:
            out.append(f"starts with `{self.startswith}`")
        if self.min_length:
            out.append(f"at least {self.min_length} character(s)")
        if self.ge is not None:
            out.append(f">= {self.ge:g}")
        if self.le is not None:
            out.append(f"<= {self.le:g}")
        if self.contract_nullable is False and self.nullable:
            out.append("never null in written rows")
        return out


@dataclass(frozen=True)
class Table:
    name: str                      # schema.table
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()      # unique together (nulls compare equal), empty = no key
    unique: tuple[tuple[str, ...], ...] = ()   # further unique column sets
    partition: str | None = None   # the column whose slice the writer replaces per run
    notes: str = ""                # extra markdown for the README (after the column table)

    def __post_init__(self):
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate column")
        for cols in (self.key, *self.unique, (self.partition,) if self.partition else ()):
            unknown = set(cols) - set(names)
            if unknown:
                raise ValueError(f"{self.name}: unknown key column(s) {sorted(unknown)}")

    @property
    def schema(self) -> str:
        return self.name.split(".")[0]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass(frozen=True)
class View:
    name: str
    description: str
    query_file: str = field(default="")


def c(name, type_, description, **kw) -> Column:
    return Column(name, type_, description, **kw)


def nn(name, type_, description, **kw) -> Column:
    """A NOT NULL column."""
    return Column(name, type_, description, nullable=False, **kw)


# --------------------------------------------------------------------------------- tables

def _partition_year(desc="partition: the school year (`2020-21`)"):
    return nn("school_year", "VARCHAR", desc, pattern=SCHOOL_YEAR)


_RAW = (
    Table(
        "raw.export_files", "One row per export file seen in a school-year folder.",
        (
            nn("school_year", "VARCHAR", "`2020-21`: the landing sub-folder (and the mapping's "
               "`school_year`)", pattern=SCHOOL_YEAR),
            nn("file_name", "VARCHAR", "file name inside the year folder", min_length=1),
            c("file_sha256", "VARCHAR", "sha256 of the file's bytes", pattern=SHA256),
            c("reader", "VARCHAR", "reader used (null when the file was not read)",
              allowed=READER_KINDS),
            c("detected", "BOOLEAN", "true when the reader was detected from the headers (no "
              "`source` in the mapping)"),
            c("encoding", "VARCHAR", "`utf-8`, `utf-8-sig` (BOM), `cp1252` (Excel) or `xlsx`"),
            c("n_columns", "INTEGER", "columns in the export", ge=0),
            c("columns", "JSON", "column names (Qualtrics: column ids), made unique"),
            c("labels", "JSON", "question text per column (Qualtrics' second header row; "
              "SurveyMonkey `Question - Sub-label`)"),
            c("n_records", "INTEGER", "data records in the file (`n_rows` + `n_problems`)", ge=0),
            c("n_rows", "INTEGER", "records read as rows (in `raw.survey_rows`)", ge=0),
            c("n_problems", "INTEGER", "records that could not be read as rows (in "
              "`raw.quarantine`, stage `read`)", ge=0),
            nn("status", "VARCHAR", "`loaded`; `unreadable` (the whole file is in "
               "`raw.quarantine` with the reason); `skipped` (in the year folder but not covered "
               "by the mapping's `files` pattern: reported in `raw.quarantine`, not read); "
               "`refused` (read but not loaded: already loaded for another year or under "
               "another name, a symbolic link out of the landing folder, a repeated mapped "
               "column, dates that disagree on day/month order or mostly outside the school "
               "year; every record is in `raw.quarantine` with the reason)",
               allowed=FILE_STATUSES),
            c("error", "VARCHAR", "why an unreadable file could not be read: file, column or "
              "byte offset"),
            c("loaded_at", "TIMESTAMP", "when this run read it"),
        ),
        key=("school_year", "file_name"), partition="school_year",
    ),
    Table(
        "raw.survey_rows", "Every exported record verbatim, as text.",
        (
            _partition_year(),
            nn("file_name", "VARCHAR", "export file", min_length=1),
            nn("file_sha256", "VARCHAR", "sha256 of the export file", pattern=SHA256),
            nn("row_number", "INTEGER", "the spreadsheet row a person sees when opening the file "
               "(header rows count: Google Forms' first record is row 2, Qualtrics' row 4)", ge=1),
            nn("reader", "VARCHAR", "reader used", allowed=READER_KINDS),
            nn("record", "JSON", "`{column: cell text}` exactly as exported ('' for empty); "
               "query with `record->>'Q1'`", startswith="{"),
            c("loaded_at", "TIMESTAMP", "when these rows were written: a run that finds the "
              "same export (name, bytes, mapping) leaves its rows, and this time, as they were"),
        ),
        key=("school_year", "file_name", "row_number"), partition="school_year",
        notes="Identifying columns (email, IP address, recipient names, location) stay here; "
        "nothing\ndownstream copies them. A run writes the rows of the year's new or changed "
        "exports only\n(pipeline/core/warehouse/file_rows.py).",
    ),
    Table(
        "raw.quarantine", "What could not be loaded, and why. Nothing is dropped silently: per "
        "file, `n_records` = staged respondents + row-level quarantine rows.",
        (
            _partition_year(),
            nn("file_name", "VARCHAR", "export file"),
            c("row_number", "INTEGER", "spreadsheet row (null for a whole file)"),
            c("column_name", "VARCHAR", "the column at fault, when there is one"),
            nn("stage", "VARCHAR", "`read` (file or record unreadable, written by `raw/survey_rows`) "
               "or `stage` (mapping to answers, written by `staging/answers`)",
               allowed=QUARANTINE_STAGES),
            nn("level", "VARCHAR", "`file` (nothing loaded), `row` (the record is not staged), "
               "`cell` (the record is staged; that one field is left empty)",
               allowed=QUARANTINE_LEVELS),
            nn("reason", "VARCHAR", "e.g. `repeated submission: identical to session-02.csv row "
               "27`, `no answer to either question (...)`, `duplicate response id R_... (first "
               "seen in ...)`, `unreadable timestamp '...'`", min_length=1),
            c("quarantined_at", "TIMESTAMP", "when"),
        ),
        partition="school_year",
    ),
    Table(
        "raw.redactions", "Audit of every name replaced before an answer reached staging "
        "(roster names, and capitalised words one typo away from a roster name of six letters "
        "or more). Contains the names: raw layer only.",
        (
            _partition_year(),
            nn("file_name", "VARCHAR", "export file the answer came from"),
            nn("row_number", "INTEGER", "spreadsheet row the answer came from", ge=1),
            nn("answer_id", "VARCHAR", "the staged answer", pattern=ANSWER_ID),
            nn("question_id", "VARCHAR", "the question", allowed=QUESTION_IDS),
            nn("start", "INTEGER", "start of the name's character span in the original answer",
               ge=0),
            nn("end", "INTEGER", "end of that span", ge=0),
            nn("original", "VARCHAR", "the text replaced", min_length=1),
            nn("placeholder", "VARCHAR", "what replaced it",
               allowed=(COACH_PLACEHOLDER, STAFF_PLACEHOLDER)),
        ),
        key=("answer_id", "start"), partition="school_year",
    ),
    Table(
        "raw.year_retirements", "Audit of every school year retired from the warehouse (its "
        "landing folder removed, or `survey-pipeline year retire`): when, why, the files it "
        "had and the rows deleted per table. Never deleted itself.",
        (
            nn("school_year", "VARCHAR", "the retired school year", pattern=SCHOOL_YEAR),
            nn("retired_at", "TIMESTAMP", "when it was retired"),
            nn("trigger", "VARCHAR", "what retired it", allowed=RETIREMENT_TRIGGERS),
            c("detail", "VARCHAR", "e.g. the landing folder that is gone"),
            nn("files", "JSON", "the year's export files at retirement: `[{file_name, "
               "file_sha256, status, n_rows}]` from raw.export_files", startswith="["),
            nn("n_answers", "BIGINT", "staged answers removed (staging.answers rows)", ge=0),
            nn("rows_deleted", "JSON", "`{table: rows deleted}` for every table that held the "
               "year", startswith="{"),
        ),
        key=("school_year", "retired_at"),
        notes="Retirement deletes the year from every table whose partition column is "
        "`school_year` and\nfrom every other table with a `school_year` column (all-years "
        "tables, rebuilt by the next\nrefresh), in one transaction (docs/operations.md, Year "
        "lifecycle).",
    ),
)

_STAGING = (
    Table(
        "staging.answers", "One row per answered question (a non-blank answer; non-substantive "
        "answers are kept, flagged).",
        (
            nn("answer_id", "VARCHAR", "`A` + 12 hex: hash of school year, response id and "
               "question; the same on every re-run", pattern=ANSWER_ID),
            _partition_year("`2020-21` (partition)"),
            c("session_number", "INTEGER", "surveyed session within the year (from the mapped "
              "column, else the file name `session-NN`); null if neither says", ge=1, le=99),
            c("session_date", "DATE", "the most common submission date among the session's "
              "responses"),
            c("submitted_at", "TIMESTAMP", "the export's submission time (null if unreadable: "
              "see `raw.quarantine`)"),
            nn("response_id", "VARCHAR", "the export's response id (Qualtrics `ResponseId`), "
               "else `<file stem>-r<row>`", min_length=1),
            c("school_id", "VARCHAR", "`school_` + 8 hex: salted hash of the school name",
              pattern=r"^school_[0-9a-f]{8}$"),
            c("coach_id", "VARCHAR", "`coach_` + 8 hex: salted hash of the coach's roster name",
              pattern=r"^coach_[0-9a-f]{8}$"),
            c("role", "VARCHAR", "the respondent's role, normalised", allowed=tuple(ROLE_VALUES)),
            nn("question_id", "VARCHAR", "`worked` (\"What worked from today's coaching "
               "session?\") or `improve` (\"In what ways can we improve today's coaching "
               "session?\")", allowed=QUESTION_IDS),
            nn("answer_text", "VARCHAR", "the answer, Unicode-normalised and trimmed, with roster "
               "names replaced", min_length=1),
            nn("non_substantive", "BOOLEAN", "true for \"NA\", \"n/a\", \"none\", \"nothing\", "
               "\"-\" and the like"),
            nn("n_redactions", "INTEGER", "names replaced in this answer", ge=0),
            nn("file_name", "VARCHAR", "provenance: the export file"),
            nn("row_number", "INTEGER", "provenance: the spreadsheet row", ge=1),
        ),
        key=("answer_id",), unique=(("response_id", "question_id", "school_year"),),
        partition="school_year",
        notes="A run writes the answers (and `raw.redactions`, and its `raw.quarantine` "
        "entries) of the year's\nnew or changed exports and of the exports after them; the "
        "others' rows stay as written\n(pipeline/core/warehouse/file_rows.py). `session_date` "
        "is set again over the year's rows every run.",
    ),
)

_CODE = (
    nn("framework", "VARCHAR", "the code's framework", min_length=1),
    nn("dimension", "VARCHAR", "the code's dimension", min_length=1),
    nn("code_id", "VARCHAR", "the code", pattern=CODE_ID),
)
_AGREEMENT_STATS = ("percent_agreement", "cohen_kappa", "krippendorff_alpha", "gwet_ac1", "pabak")
_AGREEMENT_STAT_TEXT = {
    "percent_agreement": "share of units where the coders agree",
    "cohen_kappa": "Cohen's kappa (null when undefined: see `undefined_reason`)",
    "krippendorff_alpha": "Krippendorff's alpha, nominal",
    "gwet_ac1": "Gwet's AC1 (robust to low prevalence)",
    "pabak": "prevalence- and bias-adjusted kappa",
}


def _ci_columns():
    out = []
    for stat in _AGREEMENT_STATS:
        out += [c(f"{stat}_ci_low", "DOUBLE", f"{stat}: low end of the seeded bootstrap 95% "
                  "percentile interval (answers resampled with all their units)"),
                c(f"{stat}_ci_high", "DOUBLE", f"{stat}: high end of that interval")]
    return out


_APPLICATION_KEY_COLUMNS = (
    nn("answer_id", "VARCHAR", "the staged answer", pattern=ANSWER_ID),
    nn("school_year", "VARCHAR", "copied from the answer", pattern=SCHOOL_YEAR),
    nn("question_id", "VARCHAR", "copied from the answer", allowed=QUESTION_IDS),
)
_APPLICATION_CODE_COLUMNS = (
    nn("framework", "VARCHAR", "the code applied (exists in `coding.codebook_codes`: a "
       "blocking check)", min_length=1),
    nn("dimension", "VARCHAR", "the code's dimension", min_length=1),
    nn("code_id", "VARCHAR", "the code", pattern=CODE_ID),
)

_CODING = (
    Table(
        "coding.codebook_codes", "The YAML codebooks (`codebooks/*.yaml`) as a table, one row "
        "per code.",
        (
            nn("framework", "VARCHAR", "`scale` (Coburn) or `relational_trust` (Bryk and "
               "Schneider)", min_length=1),
            nn("dimension", "VARCHAR", "the framework category, e.g. `sustainability`, "
               "`personal_regard`", min_length=1),
            nn("code_id", "VARCHAR", "e.g. `coaching_support`; unique across codebooks",
               pattern=CODE_ID),
            nn("label", "VARCHAR", "the code as the study reports it, e.g. `Coaching support`",
               min_length=1),
            c("description", "VARCHAR", "what a coder should accept"),
            nn("patterns", "JSON", "the code's patterns (kind, text, boundary) and exclusions "
               "(`\"exclude\": true`)"),
            nn("codebook_version", "VARCHAR", "first 12 hex of the sha256 of the codebook file",
               pattern=r"^[0-9a-f]{12}$"),
            c("dimension_label", "VARCHAR", "the dimension as the study reports it, e.g. "
              "`Sustainability`"),
        ),
        key=("code_id",),
    ),
    Table(
        "coding.keyword_applications", "One row per (answer, code) the keyword coder applied, "
        "with its evidence. Written by `coding/keyword_applications`, one school year per run.",
        (
            *_APPLICATION_KEY_COLUMNS,
            nn("coder", "VARCHAR", "always `keyword`", allowed=("keyword",)),
            nn("coder_kind", "VARCHAR", "always `keyword` (the kind `coding.code_applications` "
               "tells apart)", allowed=("keyword",)),
            *_APPLICATION_CODE_COLUMNS,
            c("codebook_version", "VARCHAR", "version of the codebook that produced the code"),
            c("n_evidence", "INTEGER", "number of pattern hits", ge=0),
            c("evidence", "JSON", "`[{\"pattern\", \"matched_text\", \"start\", \"end\"}]`, "
              "spans into `staging.answers.answer_text` (`answer_text[start:end] == "
              "matched_text`: a blocking check)"),
        ),
        key=("answer_id", "coder", "framework", "code_id"), partition="school_year",
    ),
    Table(
        "coding.human_applications", "One row per (answer, code, human coder) from the coders' "
        "sheets. Written by `coding/human_applications`, one school year per run.",
        (
            *_APPLICATION_KEY_COLUMNS,
            nn("coder", "VARCHAR", "the human coder's id (the coder sheet's tab name or CSV "
               "file stem)", min_length=1),
            nn("coder_kind", "VARCHAR", "always `human` (the kind `coding.code_applications` "
               "tells apart)", allowed=("human",)),
            *_APPLICATION_CODE_COLUMNS,
            c("note", "VARCHAR", "the coder's note (redacted on import)"),
            c("source_file", "VARCHAR", "the coder sheet"),
            c("source_row", "INTEGER", "the sheet's row"),
        ),
        key=("answer_id", "coder", "framework", "code_id"), partition="school_year",
    ),
    Table(
        "coding.coder_units", "Which answers each human coder coded (a coder who coded an "
        "answer and applied nothing still coded it). Rule: every substantive answer of each "
        "school year a coder's sheet refers to, plus every answer the sheet lists (see "
        "[docs/reconciliation.md](../docs/reconciliation.md)).",
        (
            nn("answer_id", "VARCHAR", "the staged answer", pattern=ANSWER_ID),
            nn("coder", "VARCHAR", "coder id (sheet tab name or CSV file stem)", min_length=1),
            nn("question_id", "VARCHAR", "copied from the answer", allowed=QUESTION_IDS),
            nn("school_year", "VARCHAR", "copied from the answer", pattern=SCHOOL_YEAR),
            nn("basis", "VARCHAR", "`listed` (the sheet names the answer) or `session` "
               "(implied: a session the coder's sheet refers to)", allowed=UNIT_BASES),
        ),
        key=("answer_id", "coder"), partition="school_year",
    ),
    Table(
        "coding.sheet_quarantine", "Coder-sheet rows that could not be used; fix them in the "
        "sheet and re-run.",
        (
            nn("source_file", "VARCHAR", "workbook or CSV"),
            c("source_sheet", "VARCHAR", "tab"),
            c("source_row", "INTEGER", "spreadsheet row"),
            c("source_column", "VARCHAR", "column (wide layout)"),
            c("column_name", "VARCHAR", "the column at fault"),
            c("coder", "VARCHAR", "coder, as written in the sheet"),
            c("answer_id", "VARCHAR", "answer id, as written in the sheet"),
            c("code", "VARCHAR", "code, as written in the sheet"),
            nn("reason", "VARCHAR", "e.g. `code 'Colaboration' is not in the codebook; did you "
               "mean collaboration?`, `unknown answer id ...`, `duplicate: ...`", min_length=1),
        ),
    ),
    Table(
        "coding.agreement", "Agreement on code presence (unit: a code on an answer, 1 applied / "
        "0 not) for each coder pair (human A vs B, each human vs `keyword`), computed from the "
        "coders' own codes, before reconciliation. Coefficients explained in "
        "[docs/agreement.md](../docs/agreement.md).",
        (
            nn("coder_a", "VARCHAR", "first coder of the pair"),
            nn("coder_b", "VARCHAR", "second coder of the pair"),
            nn("level", "VARCHAR", "the grouping", allowed=AGREEMENT_LEVELS),
            c("framework", "VARCHAR", "the group's framework (null where not part of the level)"),
            c("dimension", "VARCHAR", "the group's dimension (null where not part of the level)"),
            c("code_id", "VARCHAR", "the group's code (null where not part of the level)"),
            c("question_id", "VARCHAR", "the group's question (null where not part of the "
              "level)", allowed=QUESTION_IDS),
            c("school_year", "VARCHAR", "the group's school year (null where not part of the "
              "level)", pattern=SCHOOL_YEAR),
            c("n_units", "BIGINT", "(answer, code) units pooled in the group", ge=0),
            c("n_answers", "BIGINT", "answers both coders coded", ge=0),
            c("n_both", "BIGINT", "units both coders applied", ge=0),
            c("n_only_a", "BIGINT", "units only coder A applied", ge=0),
            c("n_only_b", "BIGINT", "units only coder B applied", ge=0),
            c("n_neither", "BIGINT", "units neither applied", ge=0),
            c("prevalence", "DOUBLE", "mean of the two coders' rates of applying the code",
              ge=0, le=1),
            *(c(s, "DOUBLE", _AGREEMENT_STAT_TEXT[s], le=1) for s in _AGREEMENT_STATS),
            *_ci_columns(),
            c("undefined_reason", "VARCHAR", "why kappa/alpha are null (e.g. nobody applied "
              "the code)"),
        ),
        key=("coder_a", "coder_b", "level", "framework", "dimension", "code_id", "question_id",
             "school_year"),
    ),
    Table(
        "coding.discrepancies", "One row per (answer, code) where the two human coders decided "
        "differently. Each run's `coding/adjudications` asset exports it as the adjudication "
        "queue `reports/discrepancy_queue.xlsx` / `.csv` (formula-safe) with empty `decision`, "
        "`reason`, `adjudicator` columns (earlier decisions pre-filled).",
        (
            nn("discrepancy_id", "VARCHAR", "stable hash of (answer, framework, code)",
               min_length=1),
            nn("answer_id", "VARCHAR", "the answer", pattern=ANSWER_ID),
            c("school_year", "VARCHAR", "the answer's school year", pattern=SCHOOL_YEAR),
            c("question_id", "VARCHAR", "the answer's question", allowed=QUESTION_IDS),
            nn("framework", "VARCHAR", "the code in dispute: framework", min_length=1),
            nn("dimension", "VARCHAR", "the code in dispute: dimension", min_length=1),
            nn("code_id", "VARCHAR", "the code in dispute", pattern=CODE_ID),
            c("answer_text", "VARCHAR", "the redacted answer"),
            c("coder_a", "VARCHAR", "first coder"),
            c("decision_a", "VARCHAR", "first coder's decision", allowed=CODER_DECISIONS),
            c("coder_b", "VARCHAR", "second coder"),
            c("decision_b", "VARCHAR", "second coder's decision", allowed=CODER_DECISIONS),
            c("keyword_applied", "BOOLEAN", "did the keyword coder apply it"),
            c("keyword_evidence", "VARCHAR", "the keyword coder's matched texts"),
        ),
        key=("discrepancy_id",), partition="school_year",
    ),
    Table(
        "coding.adjudications", "The filled queue re-imported from `<coder sheets "
        "folder>/adjudications.xlsx` or `.csv`.",
        (
            nn("discrepancy_id", "VARCHAR", "the discrepancy decided"),
            c("decision", "VARCHAR", "`apply` or `do not apply` (normalised)",
              allowed=(APPLY, DO_NOT_APPLY)),
            c("decision_text", "VARCHAR", "as typed"),
            c("reason", "VARCHAR", "as typed"),
            c("adjudicator", "VARCHAR", "as typed"),
            c("accepted", "BOOLEAN", "false when the row could not be used (see "
              "`coding.adjudication_problems`)"),
            c("source_file", "VARCHAR", "the adjudication file"),
            c("source_row", "INTEGER", "its row"),
        ),
    ),
    Table(
        "coding.adjudication_problems", "Adjudication rows that could not be used: bad decision "
        "value, unknown discrepancy id, missing adjudicator, conflicting rows.",
        (
            c("source_file", "VARCHAR", "the adjudication file"),
            c("source_row", "INTEGER", "its row"),
            c("column_name", "VARCHAR", "the column at fault"),
            c("discrepancy_id", "VARCHAR", "as typed"),
            nn("reason", "VARCHAR", "what is wrong", min_length=1),
        ),
    ),
    Table(
        "coding.final_codes", "The agreed set of codes per answer.",
        (
            nn("answer_id", "VARCHAR", "the answer", pattern=ANSWER_ID),
            nn("school_year", "VARCHAR", "the answer's school year", pattern=SCHOOL_YEAR),
            nn("question_id", "VARCHAR", "the answer's question", allowed=QUESTION_IDS),
            *_CODE,
            nn("provenance", "VARCHAR", "`agreed` (both coders applied it), `adjudicated` (a "
               "discrepancy decided \"apply\"), `unresolved` (undecided discrepancy: listed, "
               "**never counted**); in a school year with no human coding, a machine stands "
               "in: `trained_suggestion` / `zero_shot_suggestion` (a row of "
               "`coding.suggestions` with source `trained` / `zero_shot`), or `keyword` (the "
               "keyword coder, for a year `coding.suggestions` does not cover)",
               allowed=PROVENANCES),
            c("decided_by", "VARCHAR", "the coders (`a+b`), the adjudicator, `suggester <first "
              "12 hex digits of model_sha256>`, or `keyword coder`"),
            c("discrepancy_id", "VARCHAR", "for adjudicated and unresolved rows"),
        ),
        key=("answer_id", "framework", "code_id"), partition="school_year",
        notes="Count codes with `where provenance in ('agreed', 'adjudicated', "
        "'trained_suggestion',\n'zero_shot_suggestion', 'keyword')`; human codes only: "
        "`provenance in ('agreed',\n'adjudicated')`.",
    ),
    Table(
        "coding.keyword_quality", "The keyword coder against the final human codes (agreed + "
        "adjudicated), over human-coded answers.",
        (
            c("framework", "VARCHAR", "the code's framework (null on the overall, "
              "micro-averaged row)"),
            c("dimension", "VARCHAR", "the code's dimension (null on the overall row)"),
            c("code_id", "VARCHAR", "the code (null on the overall row)"),
            c("n_answers", "BIGINT", "answers evaluated", ge=0),
            c("tp", "BIGINT", "true positives", ge=0),
            c("fp", "BIGINT", "false positives", ge=0),
            c("fn", "BIGINT", "false negatives", ge=0),
            c("precision", "DOUBLE", "null when the denominator is 0", ge=0, le=1),
            c("recall", "DOUBLE", "null when the denominator is 0", ge=0, le=1),
            c("f1", "DOUBLE", "null when the denominator is 0", ge=0, le=1),
        ),
        key=("framework", "dimension", "code_id"),
    ),
    Table(
        "coding.suggestions", "Meaning-based code suggestions, one row per suggested (answer, "
        "code). They stand in for the final codes of a year nobody coded by hand "
        "(`coding.final_codes` provenance `trained_suggestion` / `zero_shot_suggestion`).",
        (
            nn("answer_id", "VARCHAR", "the answer", pattern=ANSWER_ID),
            nn("school_year", "VARCHAR", "the answer's school year", pattern=SCHOOL_YEAR),
            nn("question_id", "VARCHAR", "the answer's question", allowed=QUESTION_IDS),
            nn("framework", "VARCHAR", "the suggested code's framework", min_length=1),
            nn("dimension", "VARCHAR", "the suggested code's dimension", min_length=1),
            nn("code_id", "VARCHAR", "the suggested code", pattern=CODE_ID),
            nn("probability", "DOUBLE", "the suggester's probability that the code applies",
               ge=0, le=1),
            nn("source", "VARCHAR", "`zero_shot` (from the codebook's meaning only) or "
               "`trained` (a model trained on the other school years' human codes: never on "
               "the year itself)", allowed=SUGGESTION_SOURCES),
            c("evidence_text", "VARCHAR", "the unit of the answer (e.g. a sentence) that "
              "carries the code"),
            c("evidence_start", "INTEGER", "its start in the answer text", ge=0),
            c("evidence_end", "INTEGER", "its end in the answer text", ge=0),
            nn("model_sha256", "VARCHAR", "the embedding model's hash (its first 12 hex digits "
               "name the suggester in `final_codes.decided_by`)", pattern=SHA256),
            c("codebook_version", "VARCHAR", "the codebook version suggested from"),
        ),
        key=("answer_id", "code_id"), partition="school_year",
    ),
    Table(
        "coding.suggestion_quality", "The suggestions (and, beside them, the keyword coder) "
        "against the human final codes (agreed + adjudicated), over the answers humans coded, "
        "per school year and question; each year evaluated on its own (pooled figures: sum "
        "tp/fp/fn/tn over years, kappa from the sums).",
        (
            nn("evaluation", "VARCHAR", "`stored`: the suggestions stored in "
               "`coding.suggestions` (trained ones are leave-one-school-year-out by "
               "construction); `school_grouped_cv`: trained suggestions from school-grouped "
               "cross-validation within the row's school year (models fitted on the year's "
               "other schools; no such rows for a year with fewer than 2 schools)",
               allowed=EVALUATIONS),
            c("source", "VARCHAR", "`zero_shot`, `trained`, or `mixed` (both among the rows "
              "evaluated)", allowed=QUALITY_SOURCES),
            nn("level", "VARCHAR", "`code`, `dimension` (an answer counts when any code of the "
               "dimension applies) or `framework`", allowed=QUALITY_LEVELS),
            c("framework", "VARCHAR", "the code or rollup's framework"),
            c("dimension", "VARCHAR", "the dimension (null above its level)"),
            c("code_id", "VARCHAR", "the code (null above its level)"),
            c("question_id", "VARCHAR", "the slice's question"),
            c("school_year", "VARCHAR", "the slice's school year (partition)",
              contract_nullable=False),
            c("n_answers", "BIGINT", "answers evaluated", ge=0, contract_nullable=False),
            c("tp", "BIGINT", "true positives (suggester vs human codes)", ge=0,
              contract_nullable=False),
            c("fp", "BIGINT", "false positives", ge=0, contract_nullable=False),
            c("fn", "BIGINT", "false negatives", ge=0, contract_nullable=False),
            c("tn", "BIGINT", "true negatives", ge=0, contract_nullable=False),
            c("precision", "DOUBLE", "the suggester's precision (null when undefined)", ge=0,
              le=1),
            c("recall", "DOUBLE", "the suggester's recall (null when undefined)", ge=0, le=1),
            c("f1", "DOUBLE", "the suggester's F1 (null when undefined)", ge=0, le=1),
            c("cohen_kappa", "DOUBLE", "the suggester's Cohen's kappa (null when undefined)",
              ge=-1, le=1),
            c("keyword_precision", "DOUBLE", "the keyword coder's precision on the same answers"),
            c("keyword_recall", "DOUBLE", "the keyword coder's recall on the same answers"),
            c("keyword_f1", "DOUBLE", "the keyword coder's F1 on the same answers"),
            c("keyword_kappa", "DOUBLE", "the keyword coder's kappa on the same answers"),
        ),
        key=("evaluation", "level", "framework", "dimension", "code_id", "question_id",
             "school_year"), partition="school_year",
    ),
)


def _count_mart(name: str, description: str, grain: tuple[Column, ...], n_schools: bool = True,
                ) -> Table:
    cols = (
        nn("level", "VARCHAR", "`code`, `dimension` or `framework` (`dimension`/`code_id` null "
           "above their level)", allowed=MART_LEVELS),
        nn("school_year", "VARCHAR", "the slice's school year", pattern=SCHOOL_YEAR),
        nn("question_id", "VARCHAR", "the slice's question", allowed=QUESTION_IDS),
        *grain,
        nn("framework", "VARCHAR", "the code (or rollup): framework"),
        c("dimension", "VARCHAR", "the code's dimension (null at framework level)"),
        c("code_id", "VARCHAR", "the code (null above code level)"),
        c("label", "VARCHAR", "the code's (or rollup's) label"),
        nn("n_answers", "INTEGER", "distinct substantive answers with the code (a rollup counts "
           "an answer once)", ge=0),
        nn("n_substantive", "INTEGER", "substantive answers in the slice: the denominator", ge=0),
        c("rate_per_100", "DOUBLE", "100 × n_answers / n_substantive", ge=0, le=100),
        *((nn("n_schools", "INTEGER", "schools with a coded answer", ge=0),) if n_schools else ()),
        nn("n_sessions", "INTEGER", "coaching sessions (school × session number) with a coded "
           "answer", ge=0),
        nn("coding_source", "VARCHAR", "who coded the year: `human`; a machine standing in "
           "alone: `trained_suggestion`, `zero_shot_suggestion` or `keyword`; `mixed`; `none`",
           allowed=CODING_SOURCES),
    )
    key = ("level", "school_year", "question_id", *(g.name for g in grain), "framework",
           "dimension", "code_id")
    return Table(name, description, cols, key=key, partition="school_year")


_MARTS = (
    _count_mart("marts.code_frequencies", "Answers coded per level × school year × question × "
                "framework [× dimension [× code]], with the substantive answers, rate per 100, "
                "schools and sessions.", ()),
    _count_mart("marts.code_trends", "The same per `session_number` (within-year trends).",
                (c("session_number", "INTEGER", "surveyed session within the year"),)),
    _count_mart("marts.by_school", "The same per `school_id` (exact; suppress cells under 5 "
                "before sharing).", (c("school_id", "VARCHAR", "pseudonymous school"),),
                n_schools=False),
    _count_mart("marts.by_coach", "The same per `coach_id` (exact; suppress cells under 5 "
                "before sharing).", (c("coach_id", "VARCHAR", "pseudonymous coach"),)),
    Table(
        "marts.year_over_year", "Change in rate between two school years per level × question "
        "× framework [× dimension [× code]]. Default years: the first and the latest "
        "human-coded year when there are two, else the first and the latest year.",
        (
            nn("level", "VARCHAR", "`code`, `dimension` or `framework`", allowed=MART_LEVELS),
            nn("question_id", "VARCHAR", "the question", allowed=QUESTION_IDS),
            nn("framework", "VARCHAR", "the code (or rollup): framework"),
            c("dimension", "VARCHAR", "the code's dimension (null at framework level)"),
            c("code_id", "VARCHAR", "the code (null above code level)"),
            c("label", "VARCHAR", "the code's (or rollup's) label"),
            nn("year_a", "VARCHAR", "the earlier year compared", pattern=SCHOOL_YEAR),
            nn("year_b", "VARCHAR", "the later year compared", pattern=SCHOOL_YEAR),
            c("n_answers_a", "INTEGER", "answers with the code in year A", ge=0),
            c("n_substantive_a", "INTEGER", "substantive answers in year A", ge=0),
            c("rate_a", "DOUBLE", "rate per 100 in year A", ge=0, le=100),
            c("n_answers_b", "INTEGER", "answers with the code in year B", ge=0),
            c("n_substantive_b", "INTEGER", "substantive answers in year B", ge=0),
            c("rate_b", "DOUBLE", "rate per 100 in year B", ge=0, le=100),
            c("diff_per_100", "DOUBLE", "rate_b - rate_a"),
            c("diff_ci_low", "DOUBLE", "Newcombe 95% interval of the difference: low"),
            c("diff_ci_high", "DOUBLE", "Newcombe 95% interval of the difference: high"),
            c("cohens_h", "DOUBLE", "Cohen's h"),
            c("test", "VARCHAR", "`chi2`: chi-square without continuity correction, or "
              "`fisher`: Fisher's exact when an expected count is under 5", allowed=TESTS),
            c("statistic", "DOUBLE", "the test statistic"),
            c("p_value", "DOUBLE", "the test's p value", ge=0, le=1),
            c("p_adjusted", "DOUBLE", "Benjamini-Hochberg adjusted within a level", ge=0, le=1),
            c("coding_source_a", "VARCHAR", "who coded year A", allowed=CODING_SOURCES),
            c("coding_source_b", "VARCHAR", "who coded year B", allowed=CODING_SOURCES),
            nn("comparable", "BOOLEAN", "both years coded the same way (e.g. human and human)"),
            c("note", "VARCHAR", "how the two years' sources differ (kept, never dropped)"),
        ),
        key=("level", "question_id", "framework", "dimension", "code_id"),
    ),
    Table(
        "marts.exemplar_quotes", "Up to 5 redacted supporting quotes per question × code.",
        (
            nn("question_id", "VARCHAR", "the question", allowed=QUESTION_IDS),
            *_CODE,
            c("label", "VARCHAR", "the code's label"),
            nn("rank", "INTEGER", "1-5", ge=1),
            nn("school_year", "VARCHAR", "the quote's school year", pattern=SCHOOL_YEAR),
            c("session_number", "INTEGER", "the quote's session"),
            c("school_id", "VARCHAR", "the quote's school"),
            nn("answer_id", "VARCHAR", "the quoted answer", pattern=ANSWER_ID),
            nn("quote", "VARCHAR", "the redacted answer text", min_length=1),
            nn("n_chars", "INTEGER", "characters in the quote", ge=1),
            nn("provenance", "VARCHAR", "as in `coding.final_codes` (counted ones only)",
               allowed=COUNTED),
            nn("agreed", "BOOLEAN", "both human coders applied the code"),
            c("evidence_text", "VARCHAR", "the part of the answer that carries the code"),
            nn("reason", "VARCHAR", "why the rule chose it; names the provenance and, for a "
               "suggestion, the suggester", min_length=1),
        ),
        key=("question_id", "framework", "code_id", "rank"),
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in (*_RAW, *_STAGING, *_CODING, *_MARTS)}

# the views of pipeline/core/warehouse/views.py (each the query file of the same number in
# warehouse/queries/); a test checks the two lists agree
VIEWS: dict[str, View] = {v.name: v for v in (
    View("marts.top_codes_by_year", "the most frequent codes per school year and question",
         "01_top_codes_by_year.sql"),
    View("marts.codes_that_grew", "codes whose rate grew most between the first and the latest "
         "year", "02_codes_that_grew.sql"),
    View("marts.agreement_by_code", "inter-coder agreement per code", "03_agreement_by_code.sql"),
    View("marts.answers_with_no_code", "substantive answers no counted final code covers",
         "05_answers_with_no_code.sql"),
    View("marts.unresolved_discrepancies", "discrepancies no adjudication decided yet",
         "06_unresolved_discrepancies.sql"),
    View("marts.keyword_precision_by_code", "the keyword coder's precision per code",
         "08_keyword_precision_by_code.sql"),
    View("marts.coding_source_by_year", "who coded each school year (human, suggester or "
         "keyword coder)", "10_coding_source_by_year.sql"),
    View("marts.coded_answers", "every answer with its final codes as labels, the category, "
         "provenance and evidence of each (= reports/coded_answers.xlsx)",
         "13_coded_answers.sql"),
)}



@dataclass(frozen=True)
class UnionView:
    """A view that unions catalog tables of one shape family (`union all`, every row): its
    columns are the parts' columns in order of first appearance, null (typed) in a part that
    lacks one. Created with its tables by `warehouse.ensure_tables`, so it exists whenever they
    do. `split_by` names the column whose value tells each part's rows apart (`parts` maps
    table -> value): it splits a base table of the view's name, left by an older catalog, into
    the parts (`warehouse.ensure_tables` migrates it once)."""

    name: str
    description: str
    parts: tuple[tuple[str, str], ...]     # (table, its value of split_by)
    split_by: str

    @property
    def tables(self) -> list[str]:
        return [t for t, _ in self.parts]

    def columns(self) -> list[Column]:
        seen: dict[str, Column] = {}
        for part in self.tables:
            for col in TABLES[part].columns:
                if col.name not in seen:
                    in_all = all(col.name in columns(t) for t in self.tables)
                    seen[col.name] = col if in_all else Column(
                        col.name, col.type, col.description, nullable=True)
        return list(seen.values())

    def sql(self) -> str:
        cols = self.columns()
        selects = []
        for part in self.tables:
            have = set(columns(part))
            items = [f'"{col.name}"' if col.name in have else
                     f'cast(null as {col.type}) as "{col.name}"' for col in cols]
            selects.append(f"select {', '.join(items)} from {part}")
        return "\nunion all\n".join(selects)


# readers that need both coders' codes read this view; each writer writes its own table
UNION_VIEWS: dict[str, UnionView] = {v.name: v for v in (
    UnionView("coding.code_applications", "One row per (answer, code, coder): "
              "`coding.keyword_applications` and `coding.human_applications` together, for "
              "readers that need both (agreement, `survey-pipeline explain`).",
              (("coding.keyword_applications", "keyword"),
               ("coding.human_applications", "human")), split_by="coder_kind"),
)}


# ----------------------------------------------------------------------------- generated

def table(name: str) -> Table:
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"{name} is not in the table catalog (pipeline/core/warehouse/catalog.py)") from None


def columns(name: str) -> list[str]:
    """A table's or union view's column names."""
    return [col.name for col in relation_columns(name)]


def relation_columns(name: str) -> list[Column]:
    """The columns of a table or of a union view (`UNION_VIEWS`)."""
    if name in UNION_VIEWS:
        return UNION_VIEWS[name].columns()
    return list(table(name).columns)


def ddl(name: str) -> str:
    """The column definitions of `create table name (...)`."""
    return ", ".join(f'"{col.name}" {col.type}' + ("" if col.nullable else " NOT NULL")
                     for col in table(name).columns)


_PANDAS_DTYPES = {
    # DuckDB type -> (dtype when NOT NULL, dtype when nullable)
    "VARCHAR": ("str", "str"), "JSON": ("str", "str"),
    "INTEGER": ("int64", "Int64"), "BIGINT": ("int64", "Int64"),
    "DOUBLE": ("float64", "float64"), "BOOLEAN": ("bool", "boolean"),
    "DATE": ("datetime64[ns]", "datetime64[ns]"),
    "TIMESTAMP": ("datetime64[ns]", "datetime64[ns]"),
}
_EMPTY_DTYPES = {"VARCHAR": "object", "JSON": "object", "INTEGER": "Int32", "BIGINT": "Int64",
                 "DOUBLE": "float64", "BOOLEAN": "boolean", "DATE": "datetime64[us]",
                 "TIMESTAMP": "datetime64[us]"}


def empty_frame(name: str) -> pd.DataFrame:
    """No rows, the table's columns, a dtype per DuckDB type."""
    return pd.DataFrame({col.name: pd.Series(dtype=_EMPTY_DTYPES[col.type])
                         for col in relation_columns(name)})


def model_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace(".", "_").split("_"))


@cache
def model(name: str):
    """The pandera DataFrameModel of a table: dtypes (coerced), nullability, allowed values
    and value rules per column, the key and further unique sets."""
    import pandera.pandas as pa

    from pipeline.core.warehouse.pandera_fast import FastString

    spec = table(name)
    single = {cols[0] for cols in (spec.key, *spec.unique) if len(cols) == 1}
    multi = [list(cols) for cols in (spec.key, *spec.unique) if len(cols) > 1]
    if len(multi) > 1:
        raise ValueError(f"{name}: at most one multi-column unique set")
    annotations, attrs = {}, {}
    for col in spec.columns:
        kw = {}
        if col.allowed is not None:
            kw["isin"] = list(col.allowed)
        if col.pattern:
            kw["matches"] = {"pattern": col.pattern}
        if col.startswith:
            kw["str_startswith"] = col.startswith
        if col.min_length:
            kw["str_length"] = {"min_value": col.min_length}
        if col.ge is not None:
            kw["ge"] = col.ge
        if col.le is not None:
            kw["le"] = col.le
        dtype = _PANDAS_DTYPES[col.type][1 if col.null_ok else 0]
        dtype = FastString if dtype == "str" else dtype
        annotations[col.name] = pa.typing.Series[dtype]
        attrs[col.name] = pa.Field(nullable=col.null_ok, unique=col.name in single, **kw)

    class Config:
        strict = False
        coerce = True
        unique = multi[0] if multi else None

    Config.name = name
    return type(model_name(name), (pa.DataFrameModel,),
                {"__annotations__": annotations, "__doc__": f"{name}: {spec.description}",
                 "__module__": __name__, "Config": Config, **attrs})


def models() -> dict[str, type]:
    return {name: model(name) for name in TABLES}


# ----------------------------------------------------------------------------- markdown

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(name: str) -> str:
    spec = table(name)
    lines = [f"## {spec.name}", "", spec.description, "",
             "| column | type | null | meaning |", "|---|---|---|---|"]
    for col in spec.columns:
        rules = col.rules()
        meaning = col.description + (f" ({'; '.join(rules)})" if rules else "")
        lines.append(f"| {col.name} | {col.type} | {'yes' if col.nullable else 'no'} | "
                     f"{_cell(meaning)} |")
    facts = []
    if spec.key:
        facts.append("key: " + ", ".join(f"`{k}`" for k in spec.key))
    facts += ["unique: " + ", ".join(f"`{k}`" for k in cols) for cols in spec.unique]
    facts.append(f"partition: `{spec.partition}` (a run writes one school year's rows)"
                 if spec.partition else "partition: none")
    lines += ["", "; ".join(facts) + "."]
    if spec.notes:
        lines += ["", spec.notes]
    return "\n".join(lines)


def markdown() -> str:
    """warehouse/README.md's column tables, generated (`python -m pipeline.core.warehouse.catalog
    --markdown`)."""
    parts = [markdown_table(name) for name in TABLES]
    views = ["## Views", "", "Each the query file of the same name in `warehouse/queries/`.", "",
             "| view | query file | what |", "|---|---|---|"]
    views += [f"| {v.name} | `{v.query_file}` | {_cell(v.description)} |" for v in VIEWS.values()]
    return "\n\n".join([*parts, *map(markdown_union_view, UNION_VIEWS),
                        "\n".join(views)]) + "\n"


def markdown_union_view(name: str) -> str:
    view = UNION_VIEWS[name]
    lines = [f"## {view.name} (view)", "", view.description, "",
             "A view: " + " `union all` ".join(f"`{t}`" for t in view.tables)
             + f" (`{view.split_by}` tells them apart); a column one table lacks is null in "
             "its rows.", "", "| column | type | from |", "|---|---|---|"]
    for col in view.columns():
        tables = [t for t in view.tables if col.name in columns(t)]
        source = "both" if len(tables) == len(view.tables) else ", ".join(f"`{t}`" for t in tables)
        lines.append(f"| {col.name} | {col.type} | {source} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["--markdown"]:
        print("usage: python -m pipeline.core.warehouse.catalog --markdown", file=sys.stderr)
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
