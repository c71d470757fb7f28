"""The coded project as a REFI-QDA project file (`.qdpx`: a zip of `project.qde` and
`Sources/`), to open in NVivo, ATLAS.ti, MAXQDA, QualCoder and other tools.

- the codebook: framework > category > code, as in the `.qdc` (`qdc.append_code_tree`);
- one text source per answer (`Sources/<guid>.txt`, the redacted text only), named
  `<school year> <question> <answer id>`, with the variables School year, Session, School
  (pseudonymous id), Role and Question;
- one case per pseudonymous school, listing its answers;
- every final code (agreed, adjudicated, or a machine stand-in's in a year nobody coded by
  hand; never an unresolved discrepancy) as a coded selection over the whole answer, coded by
  each person or program that decided it: both coders for an agreed code, the adjudicator for
  an adjudicated one, the suggester or keyword coder for a machine code (the users of the
  project). The selection's description says the provenance.

GUIDs are name-based on our ids (`guids`), and the zip's timestamps fixed, so the same warehouse
gives the same file.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pandas as pd

from pipeline.core.coding.codebook import Codebook
from pipeline.core.exchange.guids import code_guid, guid
from pipeline.core.exchange.qdc import ORIGIN, append_code_tree, xml_bytes
from pipeline.core.files import atomic_path
from pipeline.core.ingest.ids import QUESTION_TEXT

PROJECT_NS = "urn:QDA-XML:project:1.0"
PROJECT_NAME = "Coaching feedback survey: coded answers"
# final_codes provenances exported as coded selections (unresolved ones are not final codes)
EXPORTED_PROVENANCES = ("agreed", "adjudicated", "trained_suggestion", "zero_shot_suggestion",
                        "keyword")
VARIABLES = (  # (name, answers column, REFI type)
    ("School year", "school_year", "Text"),
    ("Session", "session_number", "Integer"),
    ("School", "school_id", "Text"),
    ("Role", "role", "Text"),
    ("Question", "question_id", "Text"),
)
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def coders_of(provenance: str, decided_by: object) -> list[str]:
    """Who coded a final code: both coders of an agreed one ('a+b'), else `decided_by`."""
    who = "" if decided_by is None or pd.isna(decided_by) else str(decided_by).strip()
    if provenance == "agreed" and "+" in who:
        return [w for w in who.split("+") if w]
    return [who or "unknown"]


def _text(value: object) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def project_document(books: list[Codebook], answers: pd.DataFrame, final: pd.DataFrame
                     ) -> tuple[bytes, dict[str, str]]:
    """(project.qde bytes, {zip path of a source: its text})."""
    codes = {(b.framework, c.code_id): c for b in books for c in b.codes}
    final = final[final["provenance"].isin(EXPORTED_PROVENANCES)]
    unknown = sorted({f"{f}/{c}" for f, c in zip(final["framework"], final["code_id"],
                                                   strict=True) if (f, c) not in codes})
    if unknown:
        raise ValueError(f"final codes not in the codebooks: {', '.join(unknown[:5])}")
    users = sorted({u for p, d in zip(final["provenance"], final["decided_by"], strict=True)
                    for u in coders_of(p, d)})
    root = ET.Element("Project", xmlns=PROJECT_NS, name=PROJECT_NAME, origin=ORIGIN)
    users_el = ET.SubElement(root, "Users")
    for u in users or ["unknown"]:
        ET.SubElement(users_el, "User", guid=guid("user", u), name=u)
    append_code_tree(ET.SubElement(ET.SubElement(root, "CodeBook"), "Codes"), books)
    variables_el = ET.SubElement(root, "Variables")
    for name, _col, kind in VARIABLES:
        var = ET.SubElement(variables_el, "Variable", guid=guid("variable", name), name=name,
                            typeOfVariable=kind)
        ET.SubElement(var, "Description").text = f"the answer's {name.lower()}" + (
            " (pseudonymous id)" if name == "School" else "")

    answers = answers.sort_values(["school_year", "question_id", "answer_id"], kind="mergesort")
    by_answer = {a: g for a, g in final.groupby("answer_id", sort=False)}
    schools: dict[str, list[str]] = {}
    sources_el_parts, files = [], {}
    for row in answers.itertuples(index=False):
        source_guid = guid("source", row.answer_id)
        text = str(row.answer_text)
        path = f"{source_guid}.txt"
        files[f"Sources/{path}"] = text
        src = ET.Element("TextSource", guid=source_guid,
                         name=f"{row.school_year} {row.question_id} {row.answer_id}",
                         plainTextPath=f"internal://{path}")
        ET.SubElement(src, "Description").text = (
            f"answer {row.answer_id} to \"{QUESTION_TEXT.get(row.question_id, row.question_id)}\"")
        rows = by_answer.get(row.answer_id)
        for app in ([] if rows is None else rows.itertuples(index=False)):
            key = (app.framework, app.code_id)
            who = coders_of(app.provenance, app.decided_by)
            sel = ET.SubElement(src, "PlainTextSelection",
                                guid=guid("selection", row.answer_id, *key),
                                name=codes[key].label, startPosition="0",
                                endPosition=str(len(text)), creatingUser=guid("user", who[0]))
            ET.SubElement(sel, "Description").text = (
                f"{app.provenance.replace('_', ' ')}: decided by {' and '.join(who)}")
            for u in who:
                coding = ET.SubElement(sel, "Coding", guid=guid("coding", row.answer_id, *key, u),
                                       creatingUser=guid("user", u))
                ET.SubElement(coding, "CodeRef", targetGUID=code_guid(*key))
        for name, col, _kind in VARIABLES:
            value = _text(getattr(row, col, None))
            if value is None:
                continue
            vv = ET.SubElement(src, "VariableValue")
            ET.SubElement(vv, "VariableRef", targetGUID=guid("variable", name))
            ET.SubElement(vv, "IntegerValue" if name == "Session" else "TextValue").text = value
        sources_el_parts.append(src)
        school = _text(row.school_id)
        if school:
            schools.setdefault(school, []).append(source_guid)
    if schools:
        cases_el = ET.SubElement(root, "Cases")
        for school, sources in sorted(schools.items()):
            case = ET.SubElement(cases_el, "Case", guid=guid("case", school), name=school)
            ET.SubElement(case, "Description").text = "a school (pseudonymous id) and its answers"
            for s in sources:
                ET.SubElement(case, "SourceRef", targetGUID=s)
    if sources_el_parts:
        sources_el = ET.SubElement(root, "Sources")
        sources_el.extend(sources_el_parts)
    ET.SubElement(root, "Description").text = (
        "Open-ended answers of the coaching-feedback survey (names redacted), with their final "
        "codes from survey-coding-pipeline. Each coded selection's description says how the "
        "code was decided (agreed, adjudicated, or a machine stand-in).")
    return xml_bytes(root), files


def write_qdpx(books: list[Codebook], answers: pd.DataFrame, final: pd.DataFrame,
               path: str | Path) -> dict:
    """Write the `.qdpx` atomically; returns counts (sources, selections, users)."""
    qde, files = project_document(books, answers, final)
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("project.qde", _ZIP_TIME), qde,
                   compress_type=zipfile.ZIP_DEFLATED)
        for name, text in files.items():
            z.writestr(zipfile.ZipInfo(name, _ZIP_TIME), text.encode("utf-8"),
                       compress_type=zipfile.ZIP_DEFLATED)
    exported = final[final["provenance"].isin(EXPORTED_PROVENANCES)]
    return {"sources": len(files), "selections": len(exported),
            "users": len({u for p, d in zip(exported["provenance"], exported["decided_by"],
                                             strict=True) for u in coders_of(p, d)})}
