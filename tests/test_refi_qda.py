"""pipeline.core.exchange (qdc, qdc_import, qdpx): REFI-QDA files validated against the published schemas
(tests/fixtures/refi_qda), the codebook round trip, and a codebook written by ATLAS.ti."""

from __future__ import annotations

import json
import os
import re
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
import xmlschema

from pipeline.core.coding.codebook import load_codebook, load_codebooks
from pipeline.core.exchange import qdc, qdc_import, qdpx
from pipeline.core.exchange.guids import code_guid
from tests.helpers import ROOT

FIXTURES = Path(__file__).parent / "fixtures" / "refi_qda"
CODEBOOKS = ROOT / "codebooks"


@pytest.fixture(scope="module")
def codebook_schema():
    return xmlschema.XMLSchema(str(FIXTURES / "Codebook.xsd"))


@pytest.fixture(scope="module")
def project_schema():
    return xmlschema.XMLSchema(str(FIXTURES / "Project.xsd"))


@pytest.fixture(scope="module")
def books():
    return load_codebooks([CODEBOOKS])


def test_codebook_xsd_differs_from_the_original_only_by_hyphens_and_spaces():
    original = (FIXTURES / "Codebook.qualcoder-original.xsd").read_text(encoding="utf-8")
    repaired = (FIXTURES / "Codebook.xsd").read_text(encoding="utf-8")
    assert "\u2010" in original and "\u2010" not in repaired

    def squeeze(text):
        return re.sub(r"\s+", "", text.replace("\u2010", "-"))

    assert squeeze(original) == squeeze(repaired)


def test_the_schemas_reject_what_they_should(codebook_schema, project_schema):
    bad_guid = ('<CodeBook xmlns="urn:QDA-XML:codebook:1.0"><Codes><Code guid="nope" name="x" '
                'isCodable="true"/></Codes></CodeBook>')
    assert not codebook_schema.is_valid(bad_guid)
    assert not project_schema.is_valid('<Project xmlns="urn:QDA-XML:project:1.0"/>')  # no name


def test_the_qdc_of_our_codebooks_is_valid(books, codebook_schema, tmp_path):
    path = qdc.write_qdc(books, tmp_path / "codebooks.qdc")
    codebook_schema.validate(str(path))
    text = path.read_text(encoding="utf-8")
    assert text.count('isCodable="true"') == sum(len(b.codes) for b in books)
    first = books[0].codes[0]
    assert code_guid(first.framework, first.code_id) in text
    assert qdc.qdc_bytes(books) == path.read_bytes()      # the same file on every run


def _carried(book):
    """What a .qdc carries: the hierarchy, labels and meaning (not keywords or aliases)."""
    return (book.framework, book.label, dict(book.dimensions), dict(book.dimension_labels),
            [(c.code_id, c.dimension, c.label, c.description, c.definition, c.use_when,
              c.not_when, c.examples) for c in book.codes])


def _keywords(code):
    """What only the YAML holds (without the line numbers the loader records)."""
    return ([p.to_dict() for p in code.patterns], [p.to_dict() for p in code.exclusions],
            code.aliases)


def test_round_trip_into_our_codebooks_is_identical(books, tmp_path):
    path = qdc.write_qdc(books, tmp_path / "codebooks.qdc")
    report = qdc_import.import_qdc(path, tmp_path / "out", [CODEBOOKS])
    assert sorted(report.frameworks) == sorted(b.framework for b in books)
    assert report.unchanged and not report.updated and not report.added and not report.kept
    for book in books:
        back = load_codebook(tmp_path / "out" / f"{book.framework}.yaml")
        assert _carried(back) == _carried(book)
        # and what the .qdc does not carry is kept from the YAML
        assert [_keywords(c) for c in back.codes] == [_keywords(c) for c in book.codes]
        assert back.placeholders == book.placeholders


def test_round_trip_from_nothing_keeps_everything_the_qdc_carries(books, tmp_path):
    path = qdc.write_qdc(books, tmp_path / "codebooks.qdc")
    report = qdc_import.import_qdc(path, tmp_path / "out")
    assert len(report.added) == sum(len(b.codes) for b in books)
    for book in books:
        back = load_codebook(tmp_path / "out" / f"{book.framework}.yaml")
        assert _carried(back) == _carried(book)
        assert [p.text for c in back.codes for p in c.patterns] == [c.label for c in book.codes]


def test_a_qdc_edited_elsewhere_updates_labels_and_meaning_keeps_keywords(books, tmp_path):
    text = qdc.qdc_bytes(books).decode("utf-8")
    code = books[0].codes[0]
    text = text.replace(f'name="{code.label}"', 'name="Renamed &amp; moved"', 1)
    (tmp_path / "edited.qdc").write_text(text, encoding="utf-8")
    report = qdc_import.import_qdc(tmp_path / "edited.qdc", tmp_path / "out", [CODEBOOKS])
    assert report.updated == [code.code_id]
    back = load_codebook(tmp_path / "out" / f"{code.framework}.yaml")
    got = next(c for c in back.codes if c.code_id == code.code_id)
    assert got.label == "Renamed & moved" and _keywords(got) == _keywords(code)


def test_a_codebook_written_by_atlas_ti_imports(codebook_schema, tmp_path):
    """ATLAS.ti 23.4 (tests/fixtures/refi_qda/README.md): one code in a code group."""
    path = FIXTURES / "atlas_ti_23.4.qdc"
    codebook_schema.validate(str(path))   # it is a valid REFI-QDA codebook
    report = qdc_import.import_qdc(path, tmp_path, framework="atlas_study")
    assert report.frameworks == ["atlas_study"] and report.added == ["code1"]
    book = load_codebook(tmp_path / "atlas_study.yaml")
    assert book.dimensions == {"code_group_1": "kategorie 1"}      # the Set is the category
    assert book.dimension_labels == {"code_group_1": "code group 1"}
    (code,) = book.codes
    assert (code.code_id, code.label, code.dimension, code.definition) == (
        "code1", "code1", "code_group_1", "description")
    assert [p.text for p in code.patterns] == ["code1"]


def test_a_foreign_hierarchy_becomes_categories_and_codes(tmp_path):
    (tmp_path / "tool.qdc").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<CodeBook xmlns="urn:QDA-XML:codebook:1.0" origin="Some tool">'
        '<Codes><Code guid="0D62985D-B147-5D01-A9B5-CAE5DCD98342" name="Places" isCodable="false">'
        '<Description>where things happen</Description>'
        '<Code guid="725F0645-9CD3-598A-8D2B-EC3D39AB3C3F" name="School yard" isCodable="true"/>'
        '<Code guid="DFE5C38E-9449-5959-A1F7-E3D895CFA87F" name="2nd floor" isCodable="true">'
        '<Description>upstairs</Description></Code></Code>'
        '<Code guid="1FF58B12-6F6F-4B0C-8BE5-BBDC91F55294" name="Loose" isCodable="true"/>'
        '</Codes><Sets/></CodeBook>', encoding="utf-8")
    report = qdc_import.import_qdc(tmp_path / "tool.qdc", tmp_path / "out")
    book = load_codebook(tmp_path / "out" / "tool.yaml")
    assert report.added == ["school_yard", "c_2nd_floor", "loose"]
    assert book.dimensions == {"places": "where things happen",
                               "uncategorised": "codes imported from Some tool without a "
                                                "category"}
    assert [(c.code_id, c.dimension, c.definition) for c in book.codes] == [
        ("school_yard", "places", ""), ("c_2nd_floor", "places", "upstairs"),
        ("loose", "uncategorised", "")]


def test_not_a_codebook_is_refused(tmp_path):
    (tmp_path / "x.qdc").write_text("<Other/>", encoding="utf-8")
    with pytest.raises(qdc.QdcError, match="not <CodeBook>"):
        qdc.read_qdc(tmp_path / "x.qdc")
    (tmp_path / "y.qdc").write_text("<CodeBook", encoding="utf-8")
    with pytest.raises(qdc.QdcError, match="not well-formed"):
        qdc.read_qdc(tmp_path / "y.qdc")


# ----------------------------------------------------------------------------- the project

def _project_inputs(books):
    a, b = books[0].codes[0], books[-1].codes[-1]
    answers = pd.DataFrame([
        {"answer_id": "A000000000001", "school_year": "2020-21", "session_number": 2,
         "school_id": "school_0000abcd", "role": "teacher", "question_id": "worked",
         "answer_text": "=SUM(1) & <b>bold</b> — déjà vu [Name]"},
        {"answer_id": "A000000000002", "school_year": "2023-24", "session_number": None,
         "school_id": None, "role": None, "question_id": "improve", "answer_text": "more time"},
    ])
    final = pd.DataFrame([
        ("A000000000001", a, "agreed", "jm+ak"),
        ("A000000000001", b, "adjudicated", "Lead researcher"),
        ("A000000000002", a, "trained_suggestion", "suggester 0123456789ab"),
        ("A000000000002", b, "unresolved", None),
    ], columns=["answer_id", "code", "provenance", "decided_by"])
    final = final.assign(framework=[c.framework for c in final["code"]],
                         dimension=[c.dimension for c in final["code"]],
                         code_id=[c.code_id for c in final["code"]]).drop(columns="code")
    return answers, final


def test_the_project_is_valid_and_holds_every_answer_and_final_code(books, project_schema,
                                                                    tmp_path):
    answers, final = _project_inputs(books)
    counts = qdpx.write_qdpx(books, answers, final, tmp_path / "project.qdpx")
    assert counts == {"sources": 2, "selections": 3, "users": 4}
    with zipfile.ZipFile(tmp_path / "project.qdpx") as z:
        names = z.namelist()
        qde = z.read("project.qde")
        texts = {n: z.read(n).decode("utf-8") for n in names if n.startswith("Sources/")}
    assert names[0] == "project.qde" and len(texts) == 2
    project_schema.validate(qde.decode("utf-8"))
    assert sorted(texts.values()) == sorted(answers["answer_text"])
    root = xmlschema.XMLSchema(str(FIXTURES / "Project.xsd")).to_dict(qde.decode("utf-8"))
    users = {u["@guid"]: u["@name"] for u in root["Users"]["User"]}
    assert sorted(users.values()) == ["Lead researcher", "ak", "jm", "suggester 0123456789ab"]
    sources = {s["@name"]: s for s in root["Sources"]["TextSource"]}
    first = sources["2020-21 worked A000000000001"]
    assert first["@plainTextPath"].startswith("internal://")
    agreed, adjudicated = first["PlainTextSelection"]
    assert [users[c["@creatingUser"]] for c in agreed["Coding"]] == ["jm", "ak"]
    assert agreed["@endPosition"] == len(answers.at[0, "answer_text"])
    assert agreed["Description"] == "agreed: decided by jm and ak"
    assert [users[c["@creatingUser"]] for c in adjudicated["Coding"]] == ["Lead researcher"]
    second = sources["2023-24 improve A000000000002"]
    assert len(second["PlainTextSelection"]) == 1       # the unresolved code is not exported
    assert second["PlainTextSelection"][0]["Description"].startswith("trained suggestion")
    variables = {v["VariableRef"]["@targetGUID"]: v for v in first["VariableValue"]}
    assert len(variables) == 5 and len(second["VariableValue"]) == 2   # year, question only
    assert [c["@name"] for c in root["Cases"]["Case"]] == ["school_0000abcd"]


def test_final_codes_outside_the_codebook_are_refused(books, tmp_path):
    answers, final = _project_inputs(books)
    final.loc[0, "code_id"] = "no_such_code"
    with pytest.raises(ValueError, match="not in the codebooks"):
        qdpx.project_document(books, answers, final)


def test_the_projects_codebook_imports_back_identical(books, tmp_path):
    """A .qdpx (ours, or one another tool saved after opening ours) carries the codebook too."""
    answers, final = _project_inputs(books)
    qdpx.write_qdpx(books, answers, final, tmp_path / "project.qdpx")
    qdc_import.import_qdc(tmp_path / "project.qdpx", tmp_path / "out", [CODEBOOKS])
    for book in books:
        assert _carried(load_codebook(tmp_path / "out" / f"{book.framework}.yaml")) == \
            _carried(book)


def test_the_codebook_commands(tmp_path, codebook_schema):
    from typer.testing import CliRunner

    from pipeline.cli import app

    runner = CliRunner()
    out = tmp_path / "cb.qdc"
    result = runner.invoke(app, ["codebook", "export-qdc", str(CODEBOOKS), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 framework(s)" in result.output
    codebook_schema.validate(str(out))
    result = runner.invoke(app, ["codebook", "import-qdc", str(out), "--codebooks",
                                 str(CODEBOOKS), "--out", str(tmp_path / "yaml")])
    assert result.exit_code == 0, result.output
    assert "0 updated" in result.output and "0 new" in result.output
    result = runner.invoke(app, ["codebook", "import-qdc", str(tmp_path / "missing.qdc"),
                                 "--out", str(tmp_path)])
    assert result.exit_code == 1 and "no such file" in result.output


def test_codes_missing_from_the_file_are_kept_from_the_yaml(books, tmp_path):
    import xml.etree.ElementTree as ET

    ns = {"q": qdc.CODEBOOK_NS}
    root = ET.fromstring(qdc.qdc_bytes(books))
    category = root.find("q:Codes/q:Code/q:Code", ns)
    dropped = category.find("q:Code", ns)
    category.remove(dropped)
    ET.ElementTree(root).write(tmp_path / "fewer.qdc", encoding="utf-8", xml_declaration=True)
    report = qdc_import.import_qdc(tmp_path / "fewer.qdc", tmp_path / "out", [CODEBOOKS])
    code = books[0].codes[0]
    assert dropped.get("name") == code.label and report.kept == [code.code_id]
    back = load_codebook(tmp_path / "out" / f"{code.framework}.yaml")
    assert _carried(back)[4][-1] == (code.code_id, code.dimension, code.label, code.description,
                                     code.definition, code.use_when, code.not_when,
                                     code.examples)     # kept, after the file's codes


# ------------------------------------------------- the streamed project: same bytes as a tree

def _tree_document(books, answers, final) -> bytes:
    """The oracle: project.qde as an ElementTree, the way qdpx built it before it streamed."""
    import xml.etree.ElementTree as ET

    from pipeline.core.exchange.guids import guid
    from pipeline.core.ingest.ids import QUESTION_TEXT

    codes = {(b.framework, c.code_id): c for b in books for c in b.codes}
    final = final[final["provenance"].isin(qdpx.EXPORTED_PROVENANCES)]
    users = sorted({u for p, d in zip(final["provenance"], final["decided_by"], strict=True)
                    for u in qdpx.coders_of(p, d)})
    root = ET.Element("Project", xmlns=qdpx.PROJECT_NS, name=qdpx.PROJECT_NAME,
                      origin=qdc.ORIGIN)
    users_el = ET.SubElement(root, "Users")
    for u in users or ["unknown"]:
        ET.SubElement(users_el, "User", guid=guid("user", u), name=u)
    qdc.append_code_tree(ET.SubElement(ET.SubElement(root, "CodeBook"), "Codes"), books)
    variables_el = ET.SubElement(root, "Variables")
    for name, _col, kind in qdpx.VARIABLES:
        var = ET.SubElement(variables_el, "Variable", guid=guid("variable", name), name=name,
                            typeOfVariable=kind)
        ET.SubElement(var, "Description").text = f"the answer's {name.lower()}" + (
            " (pseudonymous id)" if name == "School" else "")
    answers = answers.sort_values(["school_year", "session_number", "question_id", "answer_id"],
                                  kind="mergesort")
    by_answer = {a: g for a, g in final.groupby("answer_id", sort=False)}
    schools, sources = {}, []
    for row in answers.itertuples(index=False):
        source_guid, text = guid("source", row.answer_id), str(row.answer_text)
        src = ET.Element("TextSource", guid=source_guid,
                         name=f"{row.school_year} {row.question_id} {row.answer_id}",
                         plainTextPath=f"internal://{source_guid}.txt")
        ET.SubElement(src, "Description").text = (
            f"answer {row.answer_id} to \"{QUESTION_TEXT.get(row.question_id, row.question_id)}\"")
        rows = by_answer.get(row.answer_id)
        for app in ([] if rows is None else rows.itertuples(index=False)):
            key = (app.framework, app.code_id)
            who = qdpx.coders_of(app.provenance, app.decided_by)
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
        for name, col, _kind in qdpx.VARIABLES:
            value = qdpx._text(getattr(row, col, None))
            if value is None:
                continue
            vv = ET.SubElement(src, "VariableValue")
            ET.SubElement(vv, "VariableRef", targetGUID=guid("variable", name))
            ET.SubElement(vv, "IntegerValue" if name == "Session" else "TextValue").text = value
        sources.append(src)
        school = qdpx._text(row.school_id)
        if school:
            schools.setdefault(school, []).append(source_guid)
    if schools:
        cases_el = ET.SubElement(root, "Cases")
        for school, refs in sorted(schools.items()):
            case = ET.SubElement(cases_el, "Case", guid=guid("case", school), name=school)
            ET.SubElement(case, "Description").text = qdpx.CASE_DESCRIPTION
            for s in refs:
                ET.SubElement(case, "SourceRef", targetGUID=s)
    if sources:
        ET.SubElement(root, "Sources").extend(sources)
    ET.SubElement(root, "Description").text = qdpx.PROJECT_DESCRIPTION
    return qdc.xml_bytes(root)


def _awkward_inputs(books):
    """Every branch of the renderer: markup and line breaks in names, an empty role, a
    missing session, a school-less answer, an answer without codes, codes of answers that are
    not in the project, an agreed code with one coder, no decider."""
    answers, final = _project_inputs(books)
    more = pd.DataFrame([
        {"answer_id": "A000000000003", "school_year": "2020-21", "session_number": 1.0,
         "school_id": 'sch<"&>\tool\r\n1', "role": "", "question_id": "other",
         "answer_text": "line one\r\nline two\t&amp; \x01"},
        {"answer_id": "A000000000000", "school_year": "2020-21", "session_number": 3,
         "school_id": "school_0000abcd", "role": "co-teacher", "question_id": "worked",
         "answer_text": "Chloé said — thanks"},
    ])
    a, c = books[0].codes[1], books[1].codes[0]
    extra = pd.DataFrame([
        ("A000000000003", a, "agreed", "jm"), ("A000000000003", c, "keyword", None),
        ("A000000000009", c, "adjudicated", 'x<y "z" &\nw'),
    ], columns=["answer_id", "code", "provenance", "decided_by"])
    extra = extra.assign(framework=[x.framework for x in extra["code"]],
                         dimension=[x.dimension for x in extra["code"]],
                         code_id=[x.code_id for x in extra["code"]]).drop(columns="code")
    return pd.concat([answers, more], ignore_index=True), pd.concat([final, extra],
                                                                    ignore_index=True)


def test_answers_read_in_order_need_no_sort(books):
    """`read_answers` sorts in DuckDB as `plan` sorts in pandas (nulls last, the same keys):
    a plan told they are in order is the plan of the shuffled frame."""
    import duckdb

    answers, final = _awkward_inputs(books)
    shuffled = answers.sample(frac=1, random_state=4).reset_index(drop=True)
    con = duckdb.connect()
    con.execute("create schema staging")
    con.execute("create table staging.answers as select * from shuffled")
    read = qdpx.read_answers(con)
    assert not read["answer_id"].equals(shuffled["answer_id"])

    def document(project):
        return "".join(qdpx.qde_chunks(project)), project.files

    assert document(qdpx.plan(books, read, final, in_order=True)) == document(
        qdpx.plan(books, shuffled, final))


@pytest.mark.parametrize("inputs", ["plain", "awkward", "no answers"])
def test_the_streamed_document_is_the_tree_byte_for_byte(books, inputs, tmp_path):
    answers, final = (_awkward_inputs if inputs == "awkward" else _project_inputs)(books)
    if inputs == "no answers":
        answers, final = answers.iloc[:0], final.iloc[:0]
    qde, files = qdpx.project_document(books, answers, final)
    assert qde == _tree_document(books, answers, final)
    chunks = list(qdpx.qde_chunks(qdpx.plan(books, answers, final)))
    assert all(c.endswith("\n") for c in chunks[:-1])   # whole lines: the scan relies on it
    qdpx.write_qdpx(books, answers, final, tmp_path / "p.qdpx")
    with zipfile.ZipFile(tmp_path / "p.qdpx") as z:
        assert z.namelist() == ["project.qde", *files]
        assert z.read("project.qde") == qde
        assert {n: z.read(n).decode("utf-8") for n in files} == files
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_guids_are_uuid5():
    import uuid

    from pipeline.core.exchange.guids import NAMESPACE, guid, name_guid

    for name in ["", "source\x1fA000000000001", "user\x1fLead researcher", "é—\x00" * 30]:
        assert name_guid(name) == str(uuid.uuid5(NAMESPACE, name)).upper()
    assert guid("coding", "A1", "scale", "x", 7) == str(
        uuid.uuid5(NAMESPACE, "coding\x1fA1\x1fscale\x1fx\x1f7")).upper()


def test_guids_of_many_are_each_ones_guid():
    """guids (the shared prefix hashed once, the bits and digits set by numpy) gives guid's
    string for each, one column or several, non-ASCII and NUL included."""
    from pipeline.core.exchange.guids import guid, guids

    ids = ["A1", "", "é—\x00" * 30, None, 17, *(f"A{i:012d}" for i in range(300))]
    assert guids("source", ids) == [guid("source", a) for a in ids]
    users = ["jm", "Lead researcher"] * (len(ids) // 2) + ["ak"] * (len(ids) % 2)
    assert guids("coding", ids, users, range(len(ids))) == [
        guid("coding", a, u, n) for a, u, n in zip(ids, users, range(len(ids)), strict=True)]
    assert guids("source", []) == [] and guids("source") == []
    with pytest.raises(ValueError):
        guids("coding", ["a"], ["b", "c"])


@pytest.mark.parametrize("names", [["Chloé Dubois"], ["Ed Bead", "Deb Face"], ["Zebulon Quark"]])
def test_the_streamed_name_check_counts_as_names_in_texts(books, names, monkeypatch):
    """names_in_project == names_in_texts(roster, qdc, qde, *sources) with the GUIDs masked:
    names in a source, in the document (a decider), names made of hex letters ('ed', 'deb'),
    and none at all; one source per chunk, so windows across chunk boundaries count too."""
    monkeypatch.setattr(qdpx, "_SOURCES_PER_CHUNK", 1)
    from pipeline.core.exchange.project_names import names_in_project, without_guids
    from pipeline.core.privacy.name_scan import FuzzyNameScan, names_in_texts
    from pipeline.core.privacy.redact import RosterEntry

    answers, final = _awkward_inputs(books)
    final.loc[0, "decided_by"] = "chloe+ak"
    roster = [RosterEntry(full_name=n, role="teacher") for n in names]
    project = qdpx.plan(books, answers, final)
    qde, files = qdpx.project_document(books, answers, final)
    qdc_text = qdc.qdc_bytes(books).decode("utf-8")
    expected = names_in_texts(roster, without_guids(qdc_text),
                              without_guids(qde.decode("utf-8")), *files.values())
    got = names_in_project(FuzzyNameScan(roster), qdc_text, qdpx.qde_chunks(project),
                           project.files.values())
    assert got == expected
    assert (got > 0) == (names != ["Zebulon Quark"])


@pytest.mark.parametrize("names", [["Targetguid Sourceref"], ["Sourceref Case"],
                                   ["Chloé Dubois"], ["Zebulon Quark"]])
def test_the_cases_are_scanned_collapsed_with_the_same_findings(books, names, monkeypatch):
    """The name scan sees each case's <SourceRef> lines collapsed to two (qdpx_sessions.
    _scanned_head) and finds what it finds in the cases as written: names of the words of
    those lines, of them and the case's end, one in the document, none; with a school of
    one answer and a school of several."""
    from pipeline.core.exchange import qdpx_sessions
    from pipeline.core.exchange.project_names import scan_chunks
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.privacy.redact import RosterEntry

    monkeypatch.setattr(qdpx, "_CASES_PER_CHUNK", 1)   # a chunk per case: boundaries too
    answers, final = _awkward_inputs(books)
    final.loc[0, "decided_by"] = "chloe+ak"
    more = answers.iloc[[-1] * 3].assign(answer_id=["A000000000101", "A000000000102",
                                                    "A000000000103"])
    answers = pd.concat([answers, more], ignore_index=True)
    outline = qdpx.plan(books, answers, final).outline()
    refs = [sum(r.count("\n") for r in shares) for _school, shares in outline.cases]
    assert 1 in refs and max(refs) > 2
    scan = FuzzyNameScan([RosterEntry(full_name=n, role="teacher") for n in names])
    written = scan_chunks(scan, qdpx.head_chunks(outline))
    assert scan_chunks(scan, qdpx_sessions._scanned_head(outline)) == written
    assert bool(written.found) == (names != ["Zebulon Quark"])


def test_hex_letter_names_do_not_match_guids(books):
    """A roster of names made of hex letters finds nothing in a project that holds no name
    (unmasked, 'fae', 'acc' and 'bede' are fragments of its GUIDs), and still finds the name
    once it is in a source text."""
    from pipeline.core.exchange.project_names import names_in_project
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.privacy.redact import RosterEntry

    answers, final = _awkward_inputs(books)
    roster = [RosterEntry(full_name=n, role="teacher") for n in ["Fae Dace", "Bede Acc"]]

    def found(answers):
        project = qdpx.plan(books, answers, final)
        qdc_text = qdc.qdc_bytes(books).decode("utf-8")
        return names_in_project(FuzzyNameScan(roster), qdc_text, qdpx.qde_chunks(project),
                                project.files.values())

    doc = "".join(qdpx.qde_chunks(qdpx.plan(books, answers, final)))
    assert FuzzyNameScan(roster).find(doc)  # unmasked, the GUIDs alone would block the export
    assert found(answers) == 0
    named = answers.copy()
    named.loc[named.index[0], "answer_text"] = "Fae Dace helped me plan the unit"
    assert found(named) > 0


def _cached_project(books, answers, final, roster, cache, tmp_path, name="c.qdpx"):
    """The asset's path: each session's sources from the cache or rendered; returns
    (names found, sessions reused, the written file's bytes)."""
    from pipeline.core.exchange import qdpx_sessions
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.privacy.redact import roster_fingerprint

    project = qdpx.plan(books, answers, final)
    scan = FuzzyNameScan(roster)
    pieces = qdpx_sessions.session_sources(project, scan, roster_fingerprint(roster), cache)
    found = qdpx_sessions.names_in_project(scan, qdc.qdc_bytes(books).decode("utf-8"), project,
                                        pieces)
    reused = [p.label for p in pieces if p.reused]
    path = tmp_path / name
    qdpx.write_qdpx(books, answers, final, path, project, [p.parts() for p in pieces])
    return found, reused, path.read_bytes()


def _uncached(books, answers, final, roster, tmp_path):
    from pipeline.core.exchange.project_names import names_in_project
    from pipeline.core.privacy.name_scan import FuzzyNameScan

    project = qdpx.plan(books, answers, final)
    found = names_in_project(FuzzyNameScan(roster), qdc.qdc_bytes(books).decode("utf-8"),
                             qdpx.qde_chunks(project), project.files.values())
    qdpx.write_qdpx(books, answers, final, tmp_path / "u.qdpx")
    return found, (tmp_path / "u.qdpx").read_bytes()


@pytest.mark.parametrize("forked", [False, True])
def test_session_pieces_are_reused_only_while_their_rows_are_unchanged(books, tmp_path,
                                                                       monkeypatch, forked):
    """The cached path writes the uncached file byte for byte and counts the same names; a
    second run reuses every session; a changed final code of 2023-24, a changed answer of
    2020-21's session 3, a changed roster each render again exactly the sessions they touch;
    a new session of a year renders that session only. `forked`: the sessions to render are
    rendered in worker processes (as above PARALLEL_MIN_ANSWERS answers), with the same
    result."""
    from pipeline.core import parallel
    from pipeline.core.exchange import qdpx_sessions
    from pipeline.core.privacy.redact import RosterEntry
    from pipeline.core.result_cache import ResultCache

    monkeypatch.setattr(qdpx, "_SOURCES_PER_CHUNK", 1)
    forked_maps = []
    if forked:
        monkeypatch.setattr(qdpx_sessions, "PARALLEL_MIN_ANSWERS", 1)

        def recorded(func, items, **kw):
            forked_maps.append(len(items))
            return parallel.map_forked(func, items, workers=2, **kw)

        monkeypatch.setattr(qdpx_sessions, "map_forked", recorded)
    parent = os.getpid()
    rendered_here = []   # the sessions this process rendered (a worker's list is its own)
    render_into = qdpx_sessions._render_into

    def recorded_render(cache, project, scan, session, *args):
        if os.getpid() == parent:
            rendered_here.append(session.label)
        return render_into(cache, project, scan, session, *args)

    monkeypatch.setattr(qdpx_sessions, "_render_into", recorded_render)
    cache = ResultCache(tmp_path / "cache")
    answers, final = _awkward_inputs(books)
    roster = [RosterEntry(full_name="Chloé Dubois", role="teacher")]
    s1, s2, s3 = (f"2020-21 session {n}" for n in (1, 2, 3))
    none = "2023-24 session ?"   # an answer without a session number

    def check(answers, final, roster, reused):
        found, got_reused, data = _cached_project(books, answers, final, roster, cache, tmp_path)
        assert (found, data) == _uncached(books, answers, final, roster, tmp_path)
        assert got_reused == reused
        return found

    assert check(answers, final, roster, []) > 0       # 'Chloé' in 2020-21's session 3
    # forked: the workers rendered and stored the four sessions; this process only opened them
    assert rendered_here == ([] if forked and parallel.can_fork() else [s1, s2, s3, none])
    check(answers, final, roster, [s1, s2, s3, none])
    changed = final.copy()
    changed.loc[changed["answer_id"] == "A000000000002", "decided_by"] = "suggester ffffffffffff"
    check(answers, changed, roster, [s1, s2, s3])
    edited = answers.copy()
    edited.loc[edited["answer_id"] == "A000000000000", "answer_text"] = "thanks, all fine"
    assert check(edited, changed, roster, [s1, s2, none]) == 0
    quark = [RosterEntry(full_name="Zebulon Quark", role="coach")]
    check(edited, changed, quark, [])
    # a damaged entry is rendered again, not used
    for f in (tmp_path / "cache").glob("2023-24-session-none--*.bin"):
        f.write_bytes(f.read_bytes()[:-3])
    check(edited, changed, quark, [s1, s2, s3])
    # entries that disagree on a part's size: rendered again, not copied short
    names = next((tmp_path / "cache").glob("2020-21-session-1.names--*.bin"))
    key = names.name.split("--")[1].removesuffix(".bin")
    meta = json.loads(cache.load(key, slot="2020-21-session-1.names"))
    meta["document"][2] += 1
    cache.store(key, json.dumps(meta).encode(), slot="2020-21-session-1.names")
    check(edited, changed, quark, [s2, s3, none])
    # a new session of 2020-21, between two others: the year's other sessions are reused
    new = pd.DataFrame([{"answer_id": "A000000000004", "school_year": "2020-21",
                         "session_number": 2.5, "school_id": "school_0000abcd",
                         "role": "teacher", "question_id": "worked",
                         "answer_text": "more like this"}])
    check(pd.concat([edited, new], ignore_index=True), changed, quark, [s1, s2, s3, none])
    # forked: the first run's four sessions, and each later run's to render, in the workers
    assert forked_maps == ([4, 1, 1, 4, 1, 1, 1] if forked else [])


def test_sources_are_in_year_then_session_order(books):
    """Sessions are runs of the document (what the cache keeps apart), in number order within
    a year; a missing session number comes last in its year."""
    answers, final = _awkward_inputs(books)
    spans = qdpx.session_spans(qdpx.plan(books, answers, final))
    assert [(y, s) for y, s, _a, _b in spans] == [
        ("2020-21", "1"), ("2020-21", "2"), ("2020-21", "3"), ("2023-24", None)]
    assert [(a, b) for _y, _s, a, b in spans] == [(0, 1), (1, 2), (2, 3), (3, 4)]


@pytest.mark.parametrize("names", [["Chloé Dubois"], ["Ed Bead", "Deb Face"], ["Jm Ak"]])
def test_the_per_year_name_check_counts_as_the_streamed_one(books, names, tmp_path):
    """Findings kept per year join into the whole document's count, pairs across the years'
    boundaries included (from the cache and freshly rendered alike)."""
    from pipeline.core.privacy.redact import RosterEntry
    from pipeline.core.result_cache import ResultCache

    answers, final = _awkward_inputs(books)
    final.loc[0, "decided_by"] = "chloe+ak"
    roster = [RosterEntry(full_name=n, role="teacher") for n in names]
    expected, _ = _uncached(books, answers, final, roster, tmp_path)
    cache = ResultCache(tmp_path / "cache")
    for _ in range(2):
        assert _cached_project(books, answers, final, roster, cache, tmp_path)[0] == expected
    assert _cached_project(books, answers, final, roster, None, tmp_path)[0] == expected


def test_findings_of_parts_join_with_the_pairs_across_their_boundaries():
    from pipeline.core.exchange.project_names import joined, scan_chunks
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.privacy.redact import RosterEntry

    scan = FuzzyNameScan([RosterEntry(full_name="Ed Bead", role="teacher")])
    lines = ["<a>hello</a>\n", "  Ed\n", "\n", "Bead thanks\n", "<b />\n", "ed\n"]
    whole = scan_chunks(scan, lines).found
    assert "edbead" in whole   # the name across lines 2 and 4
    for cut in range(len(lines) + 1):
        for cut2 in range(cut, len(lines) + 1):
            parts = [scan_chunks(scan, lines[:cut]), scan_chunks(scan, lines[cut:cut2]),
                     scan_chunks(scan, lines[cut2:])]
            assert joined(scan, parts) == whole


def test_lines_repeated_many_times_are_scanned_as_the_names_in_texts_find():
    """The scan takes each distinct line once and each distinct pair of adjacent lines once
    (the markup's lines repeat): the same names as the independent check on the whole text,
    including a name that only forms across the boundary between two copies of a line, across
    a line without a letter, but not across a placeholder; accents folded as on the whole."""
    from pipeline.core.exchange.project_names import scan_chunks
    from pipeline.core.privacy.name_scan import FuzzyNameScan, names_in_texts
    from pipeline.core.privacy.redact import RosterEntry

    roster = [RosterEntry(full_name="Marisol Okafor", role="coach"),
              RosterEntry(full_name="Ed Bead", role="teacher")]
    scan = FuzzyNameScan(roster)
    for lines in (["Okafor and then Marisol\n"] * 5, ["Okafor\n"] * 3 + ["Marisol x\n"] * 4,
                  ["<r/>\n"] * 7 + ["Bead\n", "Ed\n", "Ed\n", "Ed\n"], ["Okafor Marisol\n"],
                  ["Marisol\n", "Okafor\n"] * 3, ["Ed\n", "--- 12 <>\n", "\n", "Bead\n"],
                  ["Ed [name]\n", "Bead\n", "Ed\n", "[external coach name] Bead\n"],
                  ["Marisöl\n", "ÓKAFOR\n", "Ëd\n", "x\u200bBéad\n"]):
        found = scan_chunks(scan, ["".join(lines)]).found
        assert len(found) == names_in_texts(roster, "".join(lines)), lines
        assert scan_chunks(scan, lines).found == found   # line by line, as chunks
    assert "marisolokafor" in scan_chunks(scan, ["Okafor and then Marisol\n"] * 5).found


def test_small_member_records_are_the_bytes_writestr_writes(tmp_path):
    """Records made apart and appended (two batches, one from a file) give the zip writestr
    writes, byte for byte."""
    from pipeline.core.exchange import zip_parts

    texts = {"Sources/a.txt": "", "Sources/b.txt": "more time", "Sources/é.txt": "déjà vu\r\n",
             "Sources/c.txt": "x" * 200_000 + "€" * 1000, "Sources/d.txt": "NA"}
    members = [(n, t.encode("utf-8")) for n, t in texts.items()]
    with zipfile.ZipFile(tmp_path / "writestr.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("first", b"<x/>"), *members]:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    kept = zip_parts.Records()
    (tmp_path / "kept.bin").write_bytes(b"".join(kept.stream(members[2:])))
    with zip_parts.PartsZip(tmp_path / "parts.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("first", (1980, 1, 1, 0, 0, 0)), b"<x/>",
                   compress_type=zipfile.ZIP_DEFLATED)
        zip_parts.append_records(z, zip_parts.records(members[:2]))
        zip_parts.append_records(z, zip_parts.Records.from_json(
            kept.to_json(), file=open(tmp_path / "kept.bin", "rb")))
        with pytest.raises(ValueError, match="duplicate"):
            zip_parts.append_records(z, zip_parts.records(members[:1]))
        with pytest.raises(ValueError, match="duplicate"):   # within the records: nothing written
            zip_parts.append_records(z, zip_parts.records([("x.txt", b"1"), ("x.txt", b"2")]))
    assert (tmp_path / "parts.zip").read_bytes() == (tmp_path / "writestr.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "parts.zip") as z:
        assert z.testzip() is None
        assert {n: z.read(n).decode("utf-8") for n in texts} == texts


@pytest.mark.parametrize("limits", [{}, {"ZIP_FILECOUNT_LIMIT": 3}, {"ZIP64_LIMIT": 1500}])
def test_the_records_central_directory_is_zipfiles_with_zip64_too(tmp_path, monkeypatch, limits):
    """The records' central directory entries, set from arrays, and the end records are the
    bytes zipfile writes: also when the member count needs the ZIP64 end record and when the
    members' offsets pass the ZIP64 limit (both limits lowered here, as a zip of millions of
    members or past 4 GiB would need)."""
    from pipeline.core.exchange import zip_parts

    for name, value in limits.items():
        monkeypatch.setattr(zipfile, name, value)
    members = [(f"Sources/{i:03d}{'é' if i % 3 == 0 else ''}.txt",
                f"answer {i} ".encode() * (i % 7)) for i in range(40)]
    with zipfile.ZipFile(tmp_path / "writestr.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [("first", b"<x/>"), *members]:
            z.writestr(zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED)
    with zip_parts.PartsZip(tmp_path / "parts.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("first", (1980, 1, 1, 0, 0, 0)), b"<x/>",
                   compress_type=zipfile.ZIP_DEFLATED)
        zip_parts.append_records(z, zip_parts.records(members[:25]))
        zip_parts.append_records(z, zip_parts.records(members[25:]))
    assert (tmp_path / "parts.zip").read_bytes() == (tmp_path / "writestr.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "parts.zip") as z:
        assert z.testzip() is None
        assert [z.read(n) for n, _data in members] == [data for _n, data in members]


def test_the_records_entries_from_arrays_are_those_of_their_zipinfos():
    from pipeline.core.exchange import zip_parts

    for names in ([f"S/{i}{'€' * (i % 2)}.txt" for i in range(300)],   # UTF-8, any length
                  [f"S/{i:04d}.txt" for i in range(300)]):                # one length, ASCII
        recs = zip_parts.records([(n, bytes(i)) for i, n in enumerate(names)])
        for base in (0, 7, zipfile.ZIP64_LIMIT - 2**20):   # the arrays' path each time
            assert zip_parts._central_entries(base, recs) == b"".join(
                zip_parts._central_entry(zip_parts._listed(base, *e))
                for e in zip(*recs.columns(), strict=True))
    assert zip_parts._central_entries(0, zip_parts.Records()) == b""
    for bad in (("S/a.txt", 1, -1, 0, 0), ("S/a.txt", 2**32, 1, 0, 0)):
        with pytest.raises(ValueError):
            zip_parts._central_entries(0, zip_parts.Records(*([v] for v in bad)))
    for damaged in ({"names": ["a"], "crcs": ["x"], "compressed": [1], "sizes": [1],
                     "offsets": [0]},
                    {"names": [1], "crcs": [1], "compressed": [1], "sizes": [1], "offsets": [0]},
                    {"names": ["a", "b"], "crcs": [1], "compressed": [1], "sizes": [1],
                     "offsets": [0]}, {"names": []}):
        with pytest.raises((ValueError, TypeError, KeyError)):
            zip_parts.Records.from_json(damaged)
    with pytest.raises(ValueError):
        zip_parts.records([("S/a\0.txt", b"x")])


def test_kept_records_read_back_and_are_checked():
    """Records' entries go to JSON and back (also from the arrays read back); offsets that
    are not the records back to back are refused."""
    from pipeline.core.exchange import zip_parts

    recs = zip_parts.records([(f"Sources/{n}.txt", n.encode()) for n in ("a", "bé", "c")])
    back = zip_parts.Records.from_json(json.loads(json.dumps(recs.to_json())))
    assert back.to_json() == recs.to_json() and back.size == recs.size
    assert zip_parts.Records.from_json(back.to_json()).to_json() == recs.to_json()
    for column, change in (("offsets", 1), ("compressed", -1)):
        damaged = recs.to_json()
        damaged[column][1] += change
        with pytest.raises(ValueError):
            zip_parts.Records.from_json(damaged)
    assert len(zip_parts.Records.from_json(zip_parts.Records().to_json())) == 0


def test_members_written_between_records_keep_their_place_and_the_comment(tmp_path):
    """Ordinary members written before, between and after records are listed where zipfile
    would list them; the archive comment is kept; a name among the records is a duplicate
    for writestr too (zipfile warns)."""
    from pipeline.core.exchange import zip_parts

    def info(name):
        return zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))

    batches = [[(f"S/{k}{i}.txt", f"{k} {i}".encode()) for i in range(3)] for k in "ab"]
    with zipfile.ZipFile(tmp_path / "writestr.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [*batches[0], ("middle", b"m"), *batches[1], ("end", b"e")]:
            z.writestr(info(name), data, compress_type=zipfile.ZIP_DEFLATED)
        z.comment = b"a comment"
    with zip_parts.PartsZip(tmp_path / "parts.zip", "w", zipfile.ZIP_DEFLATED) as z:
        zip_parts.append_records(z, zip_parts.records(batches[0]))
        z.writestr(info("middle"), b"m", compress_type=zipfile.ZIP_DEFLATED)
        zip_parts.append_records(z, zip_parts.records(batches[1]))
        z.writestr(info("end"), b"e", compress_type=zipfile.ZIP_DEFLATED)
        z.comment = b"a comment"
        with pytest.warns(UserWarning, match="Duplicate name"):
            z._writecheck(info("S/a0.txt"))
    assert (tmp_path / "parts.zip").read_bytes() == (tmp_path / "writestr.zip").read_bytes()


def test_crc32_combine_is_the_crc_of_the_joined_bytes():
    import random

    from pipeline.core.exchange.zip_parts import crc32_combine

    rng = random.Random(7)
    for _ in range(200):
        a, b = (rng.randbytes(rng.choice([0, 1, 2, 7, 100, 4097, rng.randrange(70_000)]))
                for _ in range(2))
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


@pytest.mark.parametrize("zip64", [False, True])
def test_a_member_deflated_in_parts_reads_back_whole(tmp_path, monkeypatch, zip64):
    """Parts deflated apart (one from a file, one empty) are one member: zipfile reads it back
    with its CRC checked; with ZIP64 sizes when the member needs them (the limit lowered)."""
    import random

    from pipeline.core.exchange import zip_parts

    if zip64:
        monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 50_000)
    rng = random.Random(3)
    texts = [b"", b"<a>\n", bytes(rng.choice(b"ab <>\n") for _ in range(300_000)), b"",
             "é€\n".encode() * 5000, b"</a>"]
    parts = [zip_parts.deflate([t[:7], t[7:]], last=k == len(texts) - 1)
             for k, t in enumerate(texts)]
    d = zip_parts.Deflater()
    (tmp_path / "part.bin").write_bytes(b"".join(d.stream([texts[2]])))
    parts[2] = d.part(file=open(tmp_path / "part.bin", "rb"))
    with zip_parts.PartsZip(tmp_path / "m.zip", "w") as z:
        zip_parts.write_member(z, "doc.xml", parts)
        zip_parts.append_records(z, zip_parts.records([("after.txt", b"x" * 60_000)]))
    with zipfile.ZipFile(tmp_path / "m.zip") as z:
        assert z.testzip() is None
        assert z.read("doc.xml") == b"".join(texts)
        assert z.read("after.txt") == b"x" * 60_000
    assert zlib.decompress(b"".join(p.data or b"" for p in parts[:2]) + (tmp_path / "part.bin")
                           .read_bytes() + b"".join(p.data for p in parts[3:]), -15
                           ) == b"".join(texts)


def test_a_sessions_key_follows_which_answer_each_code_belongs_to(books):
    """The span keys put every final code in answer order once (no loop over answers): a code
    moved to another answer of the same session, or two codes of one answer swapped, changes
    that session's key and no other; the same inputs give the same keys."""
    from pipeline.core.exchange.qdpx_sessions import span_keys

    answers, final = _awkward_inputs(books)
    first = next(a for a in answers["answer_id"] if a in set(final["answer_id"]))
    twin = answers[answers["answer_id"] == first].assign(answer_id="A000000000077",
                                                         answer_text="another answer")
    answers = pd.concat([answers, twin], ignore_index=True)   # the same session as `first`

    def keys(final):
        project = qdpx.plan(books, answers, final)
        spans = qdpx.session_spans(project)
        return dict(zip([(y, s) for y, s, _a, _b in spans],
                        span_keys(project, [(a, b) for _y, _s, a, b in spans], "roster"),
                        strict=True))

    before = keys(final)
    assert keys(final.copy()) == before
    moved = final.copy()
    moved.loc[moved.index[moved["answer_id"] == first][0], "answer_id"] = "A000000000077"
    assert sum(keys(moved)[k] != before[k] for k in before) == 1
    # two codes of one answer in the other order: rendered in that order, so another key
    twice = final["answer_id"].value_counts()
    aid = twice.index[twice >= 2][0]
    rows = final.index[final["answer_id"] == aid]
    swapped = final.loc[[*final.index.difference(rows), *rows[::-1]]].reset_index(drop=True)
    kept_order = final.loc[[*final.index.difference(rows), *rows]].reset_index(drop=True)
    assert keys(kept_order) == before
    assert sum(keys(swapped)[k] != before[k] for k in before) == 1


def test_the_final_codes_are_read_in_an_order_of_their_own(tmp_path):
    """read_final_codes sorts the exported codes (each answer's by framework, code,
    provenance, who decided): the project and each session's cache key do not follow where a
    write left the rows (a refresh replaces a year's rows; a full build writes them in
    another order). Only the exported provenances."""
    import duckdb

    from tests import exchange_data as data

    path = data.build(tmp_path / "survey.duckdb")
    with duckdb.connect(str(path)) as con:
        first = qdpx.read_final_codes(con)
        con.execute("create table coding.reversed as "
                    "select * from coding.final_codes order by rowid desc")
        con.execute("drop table coding.final_codes")
        con.execute("alter table coding.reversed rename to final_codes")
        again = qdpx.read_final_codes(con)
        every = con.execute("select count(*) from coding.final_codes").fetchone()[0]
    pd.testing.assert_frame_equal(first, again)
    assert list(first.columns) == list(qdpx.FINAL_COLUMNS)
    keys = list(first.itertuples(index=False))
    assert keys == sorted(keys, key=lambda r: tuple("\uffff" if v is None else v for v in r))
    assert set(first["provenance"]) <= set(qdpx.EXPORTED_PROVENANCES) and len(first) < every


def test_warehouse_keys_follow_each_sessions_rows(books, tmp_path):
    """The sessions' keys from DuckDB (`warehouse_keys`, the asset's) line up with the
    project's sessions; the same rows in another physical order give the same keys; an edited
    answer, or a code no longer exported, changes its session's key only; the project
    written from pieces kept under them is the one rendered without a cache; keys of other
    sessions are refused."""
    import duckdb

    from pipeline.core.exchange import qdpx_sessions
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.result_cache import ResultCache

    answers, final = _awkward_inputs(books)
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")

    def load(answers, final):
        for table, frame in (("staging.answers", answers), ("coding.final_codes", final)):
            con.register("frame", frame.sample(frac=1, random_state=len(frame)))
            con.execute(f"create or replace table {table} as select * from frame")
            con.unregister("frame")
        labels = qdpx.code_labels(books)
        return {(y, i): k for i, (y, _s, _n, k) in
                enumerate(qdpx_sessions.warehouse_keys(con, labels, "roster"))}

    before = load(answers, final)
    project = qdpx.plan(books, qdpx.read_answers(con), qdpx.read_final_codes(con), in_order=True)
    spans = qdpx.session_spans(project)
    assert len(before) == len(spans) > 3
    assert load(answers.iloc[::-1], final.iloc[::-1]) == before
    edited = answers.copy()
    edited.loc[edited.index[0], "answer_text"] = "an edited answer"
    assert sum(load(edited, final)[k] != before[k] for k in before) == 1
    moved = final.copy()
    first = moved.index[moved["answer_id"].isin(set(answers["answer_id"]))][0]
    moved.loc[first, "provenance"] = "unresolved"   # no longer exported
    assert sum(load(answers, moved)[k] != before[k] for k in before) == 1

    load(answers, final)
    scan = FuzzyNameScan([])
    keys = qdpx_sessions.warehouse_keys(con, qdpx.code_labels(books), "roster")
    cache = ResultCache(tmp_path / "kept")
    with_keys = qdpx_sessions.session_sources(project, scan, "roster", cache, keys)
    assert not any(p.reused for p in with_keys)
    again = qdpx_sessions.session_sources(project, scan, "roster", cache, keys)
    assert all(p.reused for p in again)
    plain = qdpx_sessions.session_sources(project, scan, "roster", None)

    def written(pieces, name):
        path = tmp_path / name
        qdpx.write_qdpx(books, answers, final, path, project, [p.parts() for p in pieces])
        for p in pieces:
            p.close()
        return path.read_bytes()

    assert written(again, "a.qdpx") == written(plain, "b.qdpx")
    with pytest.raises(ValueError, match="not the project's"):
        qdpx_sessions.session_sources(project, scan, "roster", None, keys[1:])
    for p in with_keys:
        p.close()


def test_only_the_sessions_not_kept_are_read_and_planned(books, tmp_path):
    """The asset's way (pipeline/defs/exchange.py): the warehouse's keys, the kept sessions
    opened, then only the other sessions' answers and codes read (`rows_to_plan`) and
    planned, the outline put together from every session's piece. The file and the names
    found are the uncached whole project's, on the first run (all read), the second (none
    read), with one session's entry lost (that session read), and after an edit (the edited
    session read)."""
    import duckdb

    from pipeline.core.exchange import qdpx_sessions
    from pipeline.core.privacy.name_scan import FuzzyNameScan
    from pipeline.core.privacy.redact import RosterEntry, roster_fingerprint
    from pipeline.core.result_cache import ResultCache

    answers, final = _awkward_inputs(books)
    roster = [RosterEntry(full_name="Chloé Dubois", role="teacher")]
    scan, fingerprint = FuzzyNameScan(roster), roster_fingerprint(roster)
    cache = ResultCache(tmp_path / "kept")
    con = duckdb.connect()
    con.execute("create schema staging; create schema coding")

    def load(answers, final):
        for table, frame in (("staging.answers", answers), ("coding.final_codes", final)):
            con.register("frame", frame.sample(frac=1, random_state=len(frame)))
            con.execute(f"create or replace table {table} as select * from frame")
            con.unregister("frame")

    def asset_way():
        keys = qdpx_sessions.warehouse_keys(con, qdpx.code_labels(books), fingerprint)
        sessions = qdpx_sessions.sessions_of(keys)
        kept = qdpx_sessions.open_kept(cache, sessions)
        pairs, decisions = qdpx.read_decisions(con)
        qdpx.check_codes(books, pairs)
        rows = qdpx_sessions.rows_to_plan(sessions, kept)
        some, codes = qdpx.read_answers(con, rows), qdpx.read_final_codes(con, rows)
        users = qdpx.users_of(decisions)
        project = qdpx.plan(books, some, codes, in_order=True, users=users)
        pieces = qdpx_sessions.session_sources(project, scan, fingerprint, cache, keys, kept)
        whole = qdpx_sessions.outline(books, users, pieces)
        found = qdpx_sessions.names_in_project(scan, qdc.qdc_bytes(books).decode("utf-8"),
                                               whole, pieces)
        path = tmp_path / "asset.qdpx"
        counts = qdpx.write_qdpx(books, some, codes, path, project,
                                 [p.parts() for p in pieces], whole)
        for piece in [*kept, *pieces]:
            if piece is not None:
                piece.close()
        planned = sorted(set(some["answer_id"]))
        return (found, path.read_bytes()), counts, planned, [p.label for p in pieces
                                                            if not p.reused]

    load(answers, final)
    expected = _uncached(books, answers, final, roster, tmp_path)
    assert expected[0] > 0   # the roster's name is in one answer
    got, counts, planned, rendered = asset_way()
    assert got == expected
    assert planned == sorted(answers["answer_id"]) and len(rendered) > 3
    assert counts["sources"] == len(answers)
    exported = final[final["provenance"].isin(qdpx.EXPORTED_PROVENANCES)]
    # the selections written: the exported codes of the project's answers
    assert counts["selections"] == int(exported["answer_id"].isin(answers["answer_id"]).sum())
    got, again, planned, rendered = asset_way()
    assert (got, again, planned, rendered) == (expected, counts, [], [])
    # two sessions' entries lost, apart: those alone are read (two ranges), planned, rendered
    project = qdpx.plan(books, answers, final)
    spans = qdpx.session_spans(project)
    lost = [spans[1], spans[3]]
    for year, session, _a, _b in lost:
        for entry in (tmp_path / "kept").glob(f"{year}-session-{session or 'none'}.names--*"):
            entry.unlink()
    got, _counts, planned, rendered = asset_way()
    assert got == expected
    assert rendered == [f"{y} session {s or '?'}" for y, s, _a, _b in lost]
    assert planned == sorted(a for _y, _s, start, stop in lost
                             for a in project.answers["answer_id"][start:stop])
    year, session, start, stop = spans[1]
    # an edited answer: its session alone, and the file and names follow the edit
    edited = answers.copy()
    at = edited.index[edited["answer_id"] == project.answers["answer_id"][start]][0]
    edited.loc[at, "answer_text"] = "Chloé Dubois again"
    load(edited, final)
    got, _counts, planned, rendered = asset_way()
    assert got == _uncached(books, edited, final, roster, tmp_path) != expected
    assert rendered == [f"{year} session {session}"]
    # an answer id twice in the warehouse: refused, though its sessions are kept
    con.execute("insert into staging.answers select * from staging.answers limit 1")
    with pytest.raises(ValueError, match="the same answer_id"):
        qdpx.check_unique_answers(con)
