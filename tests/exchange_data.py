"""A small warehouse for the exchange tests (coded answers, explain, the run summary): three
answers of a human-coded year (agreed, adjudicated, unresolved and rejected codes, keyword hits,
a suggestion) and one of a machine-coded year, written through the catalog's DDL."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.core.coding.codebook import codebook_codes_frame, load_codebooks
from pipeline.core.reconciliation.discrepancies import discrepancy_id
from pipeline.core.warehouse import connection as wh
from pipeline.core.warehouse import views
from tests.helpers import ROOT

TEXT_1 = "-Our team collaborated on the plan, and she is so knowledgeable"
ANSWERS = pd.DataFrame([
    {"answer_id": "A00000000000a", "school_year": "2020-21", "session_number": 1,
     "school_id": "school_0000000a", "role": "teacher", "question_id": "worked",
     "answer_text": TEXT_1, "non_substantive": False},
    {"answer_id": "A00000000000b", "school_year": "2020-21", "session_number": 2,
     "school_id": "school_0000000a", "role": "principal", "question_id": "improve",
     "answer_text": "=more time please", "non_substantive": False},
    {"answer_id": "A00000000000c", "school_year": "2020-21", "session_number": 2,
     "school_id": "school_0000000b", "role": "teacher", "question_id": "worked",
     "answer_text": "n/a", "non_substantive": True},
    {"answer_id": "A00000000000d", "school_year": "2024-25", "session_number": 1,
     "school_id": "school_0000000b", "role": "teacher", "question_id": "worked",
     "answer_text": "We changed our practice.", "non_substantive": False},
])
ANSWERS = ANSWERS.assign(response_id=[f"R_{i}" for i in range(len(ANSWERS))], n_redactions=0,
                         file_name="session-01.csv", row_number=range(2, 2 + len(ANSWERS)))
A, B, C, D = ANSWERS["answer_id"]
DID_UNRESOLVED = discrepancy_id(A, "relational_trust", "knowledgeable")
DID_REJECTED = discrepancy_id(B, "scale", "collaboration")
DID_ADJUDICATED = discrepancy_id(B, "scale", "time_allocated")


def _code(framework, dimension, code_id):
    return {"framework": framework, "dimension": dimension, "code_id": code_id}


COLLAB = _code("scale", "depth", "collaboration")
KNOW = _code("relational_trust", "competence_in_core_responsibilities", "knowledgeable")
TIME = _code("scale", "sustainability", "time_allocated")
PRACTICE = _code("scale", "depth", "our_practice")


def build(path: Path) -> Path:
    """The warehouse file at `path`, with marts.coded_answers and the other views."""
    books = load_codebooks([ROOT / "codebooks"])
    con = duckdb.connect(str(path))
    final = pd.DataFrame([
        {"answer_id": A, **COLLAB, "provenance": "agreed", "decided_by": "jm+ak",
         "discrepancy_id": None},
        {"answer_id": A, **KNOW, "provenance": "unresolved", "decided_by": None,
         "discrepancy_id": DID_UNRESOLVED},
        {"answer_id": B, **TIME, "provenance": "adjudicated", "decided_by": "Lead researcher",
         "discrepancy_id": DID_ADJUDICATED},
        {"answer_id": D, **PRACTICE, "provenance": "trained_suggestion",
         "decided_by": "suggester 0123456789ab", "discrepancy_id": None},
    ])
    final = final.merge(ANSWERS[["answer_id", "school_year", "question_id"]], on="answer_id")
    span = TEXT_1.index("collaborated")
    apps = pd.DataFrame([
        {"answer_id": A, "coder": "jm", "coder_kind": "human", **COLLAB, "note": "teamwork"},
        {"answer_id": A, "coder": "ak", "coder_kind": "human", **COLLAB},
        {"answer_id": A, "coder": "jm", "coder_kind": "human", **KNOW},
        {"answer_id": B, "coder": "ak", "coder_kind": "human", **TIME},
        {"answer_id": B, "coder": "jm", "coder_kind": "human", **COLLAB},
        {"answer_id": A, "coder": "keyword", "coder_kind": "keyword", **COLLAB, "n_evidence": 1,
         "evidence": json.dumps([{"pattern": "stem: collaborate", "matched_text": "collaborated",
                                  "start": span, "end": span + len("collaborated")}])},
        {"answer_id": B, "coder": "keyword", "coder_kind": "keyword", **TIME, "n_evidence": 1,
         "evidence": json.dumps([{"pattern": "more time", "matched_text": "more time",
                                  "start": 1, "end": 10}])},
    ]).merge(ANSWERS[["answer_id", "school_year", "question_id"]], on="answer_id")
    suggestions = pd.DataFrame([
        {"answer_id": D, **PRACTICE, "probability": 0.81, "source": "trained",
         "evidence_text": "We changed our practice.", "evidence_start": 0, "evidence_end": 24,
         "model_sha256": "0123456789abcdef"},
        {"answer_id": A, **KNOW, "probability": 0.66, "source": "zero_shot",
         "evidence_text": "she is so knowledgeable", "evidence_start": 40, "evidence_end": 63,
         "model_sha256": "0123456789abcdef"},
    ]).merge(ANSWERS[["answer_id", "school_year", "question_id"]], on="answer_id")
    disc = pd.DataFrame([
        {"discrepancy_id": DID_UNRESOLVED, "answer_id": A, **KNOW, "coder_a": "jm",
         "decision_a": "applied", "coder_b": "ak", "decision_b": "not applied"},
        {"discrepancy_id": DID_ADJUDICATED, "answer_id": B, **TIME, "coder_a": "jm",
         "decision_a": "not applied", "coder_b": "ak", "decision_b": "applied"},
        {"discrepancy_id": DID_REJECTED, "answer_id": B, **COLLAB, "coder_a": "jm",
         "decision_a": "applied", "coder_b": "ak", "decision_b": "not applied"},
    ])
    adj = pd.DataFrame([
        {"discrepancy_id": DID_ADJUDICATED, "decision": "apply", "decision_text": "yes",
         "reason": "asks for more time", "adjudicator": "Lead researcher", "accepted": True},
        {"discrepancy_id": DID_REJECTED, "decision": "do not apply", "decision_text": "no",
         "reason": "no teamwork named", "adjudicator": "Lead researcher", "accepted": True},
    ])
    quarantine = pd.DataFrame([{"school_year": "2020-21", "file_name": "s1.csv",
                                "row_number": 4, "stage": "stage", "level": "row",
                                "reason": "no answer to either question"}])
    tables = {"staging.answers": ANSWERS, "coding.final_codes": final,
              "coding.keyword_applications": apps[apps["coder_kind"] == "keyword"],
              "coding.human_applications": apps[apps["coder_kind"] == "human"],
              "coding.suggestions": suggestions,
              "coding.discrepancies": disc, "coding.adjudications": adj,
              "coding.codebook_codes": codebook_codes_frame(books), "raw.quarantine": quarantine}
    for table, frame in tables.items():
        wh.replace_rows(con, table, frame.reindex(columns=wh.column_names(table)))
    views.create_views(con)
    con.close()
    return path


def workbook_contents(path: Path) -> dict:
    """Everything openpyxl reads of a workbook that a reader sees, cell by cell: each tab's
    values and types, each cell's style (font, fill, border, alignment, number format,
    protection, quote prefix), comments, merged cells, frozen panes, filter, data
    validations, column widths and row heights. Two workbooks with equal contents read the
    same in Excel, whatever bytes xlsxwriter chose (shared or inline strings, style order)."""
    import openpyxl

    wb = openpyxl.load_workbook(path)
    out: dict = {"sheets": wb.sheetnames, "title": wb.properties.title}
    for ws in wb.worksheets:
        cells = {}
        for row in ws.iter_rows():
            for c in row:
                if c.value is None and not c.has_style and c.comment is None:
                    continue
                cells[c.coordinate] = (
                    c.value, c.data_type, repr(c.font), repr(c.fill), repr(c.border),
                    repr(c.alignment), c.number_format, repr(c.protection), c.quotePrefix,
                    c.comment.text if c.comment else None)
        out[ws.title] = {
            "cells": cells, "freeze": ws.freeze_panes, "filter": ws.auto_filter.ref,
            "merged": sorted(map(str, ws.merged_cells.ranges)),
            "validations": sorted((str(v.sqref), v.type, v.formula1, v.errorStyle,
                                   v.errorTitle, v.error) for v in
                                  ws.data_validations.dataValidation),
            "widths": {k: d.width for k, d in ws.column_dimensions.items()},
            "heights": {k: d.height for k, d in ws.row_dimensions.items() if d.height},
            "active": wb.active.title,
        }
    return out
