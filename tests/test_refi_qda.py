"""pipeline.core.exchange (qdc, qdc_import, qdpx): REFI-QDA files validated against the published schemas
(tests/fixtures/refi_qda), the codebook round trip, and a codebook written by ATLAS.ti."""

from __future__ import annotations

import re
import zipfile
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
