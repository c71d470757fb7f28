"""pipeline.core.reconciliation (discrepancies, queue, adjudications, final_codes): discrepancies, the queue round trip (XLSX and CSV), formula
neutralisation, per-row adjudication problems and the final-code provenance rules."""

from __future__ import annotations

import csv
import json

import openpyxl
import pandas as pd
import pytest

from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.reconciliation.adjudications import (
    ADJUDICATION_COLUMNS,
    normalise_decision,
    read_adjudications,
)
from pipeline.core.reconciliation.discrepancies import (
    DISCREPANCY_COLUMNS,
    discrepancies,
    discrepancy_id,
)
from pipeline.core.reconciliation.final_codes import (
    FINAL_COLUMNS,
    final_codes,
    keyword_standin,
    reconciliation_summary,
    standin_by_year,
    suggestion_standin,
)
from pipeline.core.reconciliation.queue import QUEUE_COLUMNS, write_queue
from tests.helpers import ROOT

ANSWERS = pd.DataFrame(
    [
        ("A1", "2020-21", "worked", "Our team collaborated on the plan"),
        ("A2", "2020-21", "improve", "=HYPERLINK(\"http://x\",\"click\") more time"),
        ("A3", "2020-21", "worked", "-We followed the process"),
        ("A4", "2023-24", "worked", "The coach is knowledgeable"),
        ("A5", "2024-25", "worked", "We ran out of time"),
    ],
    columns=["answer_id", "school_year", "question_id", "answer_text"],
)
CODE = {"collaboration": ("scale", "depth"), "time_allocated": ("scale", "sustainability"),
        "follow_the_process": ("scale", "sustainability"),
        "knowledgeable": ("relational_trust", "competence_in_core_responsibilities")}


def apps(*triples):
    return pd.DataFrame([{"answer_id": a, "coder": c, "framework": CODE[k][0],
                          "dimension": CODE[k][1], "code_id": k} for c, a, k in triples],
                        columns=["answer_id", "coder", "framework", "dimension", "code_id"])


def units(*pairs):
    year = ANSWERS.set_index("answer_id")
    return pd.DataFrame([{"answer_id": a, "coder": c, "question_id": year.at[a, "question_id"],
                          "school_year": year.at[a, "school_year"]} for c, a in pairs])


APPS = apps(("jm", "A1", "collaboration"), ("ak", "A1", "collaboration"),  # agreed
            ("jm", "A2", "time_allocated"),  # jm only
            ("ak", "A3", "follow_the_process"),  # ak only
            ("jm", "A4", "knowledgeable"))  # A4: only jm coded it
UNITS = units(("jm", "A1"), ("jm", "A2"), ("jm", "A3"), ("jm", "A4"),
              ("ak", "A1"), ("ak", "A2"), ("ak", "A3"))
KEYWORD = pd.DataFrame([
    ("A2", "scale", "sustainability", "time_allocated", "v1", 1,
     json.dumps([{"pattern": "more time", "matched_text": "more time", "start": 35, "end": 44}])),
    ("A5", "scale", "sustainability", "time_allocated", "v1", 1,
     json.dumps([{"pattern": "ran out of time", "matched_text": "ran out of time", "start": 3,
                  "end": 18}])),
], columns=["id", "framework", "dimension", "code_id", "codebook_version", "n_evidence",
            "evidence"])


@pytest.fixture
def disc():
    return discrepancies(APPS, UNITS, ANSWERS, KEYWORD, "jm", "ak")


def test_discrepancies(disc):
    assert list(disc.columns) == DISCREPANCY_COLUMNS
    got = disc[["answer_id", "code_id", "decision_a", "decision_b", "keyword_applied",
                "keyword_evidence"]].values.tolist()
    assert got == [  # school year, then 'worked' before 'improve', then answer
        ["A3", "follow_the_process", "not applied", "applied", False, ""],
        ["A2", "time_allocated", "applied", "not applied", True, "more time"],
        ["A4", "knowledgeable", "applied", "not coded", False, ""],
    ]
    assert disc["answer_text"].iloc[0] == "-We followed the process"
    assert disc["discrepancy_id"].iloc[1] == discrepancy_id("A2", "scale", "time_allocated")


def test_discrepancy_ids_do_not_depend_on_coder_order(disc):
    swapped = discrepancies(APPS, UNITS, ANSWERS, KEYWORD, "ak", "jm")
    assert list(swapped["discrepancy_id"]) == list(disc["discrepancy_id"])
    assert list(swapped["decision_a"]) == list(disc["decision_b"])


def test_normalise_decision():
    for text in ("apply", "Apply", " YES ", "y", "1", "true", "applied"):
        assert normalise_decision(text) == "apply", text
    for text in ("do not apply", "Do Not Apply", "DON'T APPLY", "dont apply", "no", "0",
                 "false", "not applied"):
        assert normalise_decision(text) == "do not apply", text
    for text in ("maybe", "", "2", "apply?!x"):
        assert normalise_decision(text) is None, text


# ----------------------------------------------------------------------------------- queue


def test_queue_cells_are_never_formulas(disc, tmp_path):
    xlsx, csv_path = tmp_path / "queue.xlsx", tmp_path / "queue.csv"
    counts = write_queue(disc, xlsx, csv_path)
    assert counts == {"n_rows": 3, "n_open": 3, "n_decided": 0, "n_stale": 0}
    ws = openpyxl.load_workbook(xlsx)["queue"]
    assert ws["A1"].value.startswith("3 of 3 discrepancies left to decide")
    assert [c.value for c in ws[2]] == QUEUE_COLUMNS     # the header, under the count line
    text_col = QUEUE_COLUMNS.index("answer_text") + 1
    cells = [c for row in ws.iter_rows(min_row=3) for c in row]
    assert cells and all(c.data_type != "f" for c in cells)
    formula_like = ws.cell(row=4, column=text_col)
    assert formula_like.value == ANSWERS.at[1, "answer_text"]  # the text itself, unchanged
    assert formula_like.quotePrefix  # Excel keeps it text even when the cell is edited
    assert ws.cell(row=3, column=text_col).value == "-We followed the process"
    assert not ws.cell(row=5, column=text_col).quotePrefix

    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == QUEUE_COLUMNS
    texts = [r[QUEUE_COLUMNS.index("answer_text")] for r in rows[1:]]
    assert texts == ["'-We followed the process", "'" + ANSWERS.at[1, "answer_text"],
                     "The coach is knowledgeable"]
    for row in rows[1:]:
        assert not any(v.startswith(("=", "+", "-", "@", "\t", "\r")) for v in row)


def test_a_queue_kept_under_its_inputs_key_is_copied_without_the_discrepancies(disc,
                                                                                  tmp_path):
    """`write_queue(..., key=K)` keeps the files and counts under K; `kept_queue(K)` copies
    them back (the same bytes and counts) without being given the discrepancies; another
    key, or damaged counts, find nothing."""
    from pipeline.core.reconciliation.queue import inputs_key, kept_queue
    from pipeline.core.result_cache import ResultCache

    books = load_codebooks([ROOT / "codebooks"])
    kept = ResultCache(tmp_path / "kept")
    key = inputs_key("discrepancies print", "decisions print", "codebooks print")
    assert key != inputs_key("discrepancies print", "decisions print", "other codebooks")
    first = tmp_path / "a.xlsx", tmp_path / "a.csv"
    counts = write_queue(disc, *first, codebooks=books, kept=kept, key=key)
    again = tmp_path / "b.xlsx", tmp_path / "b.csv"
    assert kept_queue(kept, key, *again) == counts
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in first]
    assert kept_queue(kept, inputs_key("something else"), *again) is None
    kept.store(key, b"not json", slot="counts")
    assert kept_queue(kept, key, *again) is None


def test_the_queue_is_the_same_from_decisions_read_back_from_the_warehouse(disc, tmp_path):
    """The adjudications asset keeps the queue written from the decisions as parsed and copies
    it on the next runs, which read the decisions back from coding.adjudications: both give
    the same files."""
    import duckdb

    from pipeline.core.warehouse import connection as wh

    books = load_codebooks([ROOT / "codebooks"])
    filled = tmp_path / "filled.csv"
    write_queue(disc, None, filled, codebooks=books)
    with filled.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    d = QUEUE_COLUMNS.index("decision")
    rows[1][d:d + 3] = ["apply", "the meaning, é", "jm"]
    rows[2][d:d + 3] = ["do not apply", "", "ak"]
    with filled.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    parsed, problems = read_adjudications(filled, disc)
    assert problems.empty and len(parsed) == 2
    con = duckdb.connect()
    wh.ensure_tables(con, ["coding.adjudications"])
    wh.replace_many(con, [("coding.adjudications", parsed, None)])
    back = wh.read_frame(con, "coding.adjudications")
    files = []
    for name, adj in (("parsed", parsed), ("back", back)):
        paths = tmp_path / f"{name}.xlsx", tmp_path / f"{name}.csv"
        write_queue(disc, *paths, existing_adjudications=adj, codebooks=books)
        files.append([p.read_bytes() for p in paths])
    assert files[0] == files[1]


def test_a_kept_queue_is_copied_while_its_rows_are_the_same(disc, tmp_path, monkeypatch):
    """With a result cache the queue's files are written once and copied by the next runs
    (the same bytes); a decision made in between writes them again."""
    from pipeline.core.reconciliation import queue
    from pipeline.core.result_cache import ResultCache

    books = load_codebooks([ROOT / "codebooks"])
    kept = ResultCache(tmp_path / "kept")
    written = []
    real = queue._write_xlsx
    monkeypatch.setattr(queue, "_write_xlsx", lambda *a: (written.append(1), real(*a)))

    def run(name, adj=None):
        paths = tmp_path / f"{name}.xlsx", tmp_path / f"{name}.csv"
        counts = write_queue(disc, *paths, existing_adjudications=adj, codebooks=books,
                             kept=kept)
        return counts, [p.read_bytes() for p in paths]

    first = run("a")
    assert run("b") == first and len(written) == 1
    adj = pd.DataFrame([{"discrepancy_id": disc.at[1, "discrepancy_id"], "decision": "apply",
                         "decision_text": "apply", "reason": "clear", "adjudicator": "jm",
                         "accepted": True, "source_file": "a.csv", "source_row": 2}])
    counts, files = run("c", adj)
    assert counts["n_decided"] == 1 and len(written) == 2 and files != first[1]
    plain = tmp_path / "plain.csv"
    write_queue(disc, None, plain, existing_adjudications=adj, codebooks=books)
    assert files[1] == plain.read_bytes()


def test_a_large_queue_is_written_on_two_cores_as_on_one(disc, tmp_path, monkeypatch):
    """From PARALLEL_MIN_ROWS rows the XLSX and CSV are written by two forked processes at
    once: the same bytes, counts and kept files as written one after the other."""
    from pipeline.core.reconciliation import queue
    from pipeline.core.result_cache import ResultCache

    books = load_codebooks([ROOT / "codebooks"])

    def run(name: str) -> tuple:
        kept = ResultCache(tmp_path / f"kept-{name}")
        paths = tmp_path / f"{name}.xlsx", tmp_path / f"{name}.csv"
        counts = write_queue(disc, *paths, codebooks=books, kept=kept)
        again = tmp_path / f"{name}-again.xlsx", tmp_path / f"{name}-again.csv"
        write_queue(disc, *again, codebooks=books, kept=kept)   # copied from the cache
        return counts, [p.read_bytes() for p in (*paths, *again)]

    one = run("one")
    forked = []
    real = queue.map_forked
    monkeypatch.setattr(queue, "map_forked", lambda f, items: forked.append(1) or real(f, items))
    monkeypatch.setattr(queue, "PARALLEL_MIN_ROWS", 0)
    assert run("two") == one and forked
    assert one[1][0][:2] == b"PK" and one[1][0] == one[1][2] and one[1][1] == one[1][3]


def test_queue_shows_labels_open_first_a_count_and_the_codebook(disc, tmp_path):
    books = load_codebooks([ROOT / "codebooks"])
    adj = pd.DataFrame([{"discrepancy_id": disc.at[1, "discrepancy_id"], "decision": "apply",
                         "decision_text": "apply", "reason": "clear", "adjudicator": "jm",
                         "accepted": True, "source_file": "a.csv", "source_row": 2}])
    xlsx = tmp_path / "queue.xlsx"
    counts = write_queue(disc, xlsx, None, existing_adjudications=adj, codebooks=books)
    assert counts == {"n_rows": 3, "n_open": 2, "n_decided": 1, "n_stale": 0}
    wb = openpyxl.load_workbook(xlsx)
    ws = wb["queue"]
    assert ws["A1"].value.startswith("2 of 3 discrepancies left to decide (1 decided)")
    assert ws.freeze_panes == "B3" and ws.auto_filter.ref.startswith("A2:")
    rows = [[c.value for c in r] for r in ws.iter_rows(min_row=3)]
    col = {name: i for i, name in enumerate(QUEUE_COLUMNS)}
    assert [r[col["status"]] for r in rows] == ["open", "open", "decided"]
    assert col["code_label"] == col["code_id"] + 1
    labels = {c.code_id: (c.label, b.dimension_labels[c.dimension]) for b in books
              for c in b.codes}
    for r in rows:
        assert (r[col["code_label"]], r[col["category"]]) == labels[r[col["code_id"]]]
    tab = wb["codebook"]
    head = [c.value for c in tab[1]]
    assert head[:4] == ["framework", "category", "code_id", "code_label"]
    assert tab.max_row - 1 == sum(len(b.codes) for b in books)
    assert all(r[head.index("definition")] for r in tab.iter_rows(min_row=2, values_only=True))
    # the filled workbook still reads back: the header is found under the count line
    back, problems = read_adjudications(xlsx, disc)
    assert problems.empty
    assert back[["discrepancy_id", "decision", "source_row"]].values.tolist() == [
        [disc.at[1, "discrepancy_id"], "apply", 5]]


def fill_xlsx(path, decisions: dict[int, tuple[str, str, str]]):
    wb = openpyxl.load_workbook(path)
    ws = wb["queue"]
    cols = {name: QUEUE_COLUMNS.index(name) + 1 for name in ("decision", "reason", "adjudicator")}
    for row, (decision, reason, who) in decisions.items():
        ws.cell(row=row, column=cols["decision"], value=decision)
        ws.cell(row=row, column=cols["reason"], value=reason)
        ws.cell(row=row, column=cols["adjudicator"], value=who)
    wb.save(path)


def test_round_trip_xlsx(disc, tmp_path):
    xlsx = tmp_path / "queue.xlsx"
    write_queue(disc, xlsx, None)
    fill_xlsx(xlsx, {3: ("Yes", "looks right", "jm+ak"), 4: ("do not apply", "other sense",
                                                               "jm+ak")})
    adj, problems = read_adjudications(xlsx, disc)
    assert problems.empty
    assert list(adj.columns) == ADJUDICATION_COLUMNS
    assert adj[["discrepancy_id", "decision", "reason", "accepted", "source_row"]].values.tolist(
    ) == [[disc.at[0, "discrepancy_id"], "apply", "looks right", True, 3],
          [disc.at[1, "discrepancy_id"], "do not apply", "other sense", True, 4]]


def test_round_trip_csv_and_reexport_keeps_decisions(disc, tmp_path):
    csv_path = tmp_path / "queue.csv"
    write_queue(disc, None, csv_path)
    with csv_path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    d = QUEUE_COLUMNS.index("decision")
    rows[1][d:d + 3] = ["apply", "-meaning matches", "jm"]
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    adj, problems = read_adjudications(csv_path, disc)
    assert problems.empty
    assert adj["reason"].tolist() == ["-meaning matches"]  # typed by a person, not neutralised

    # Re-export with the earlier decisions: they are pre-filled, the rest stays open.
    again = tmp_path / "again.csv"
    counts = write_queue(disc, tmp_path / "again.xlsx", again, existing_adjudications=adj)
    assert counts == {"n_rows": 3, "n_open": 2, "n_decided": 1, "n_stale": 0}
    adj2, problems2 = read_adjudications(again, disc)
    assert problems2.empty
    assert adj2[["discrepancy_id", "decision", "reason", "adjudicator"]].values.tolist() == \
        adj[["discrepancy_id", "decision", "reason", "adjudicator"]].values.tolist()
    adj3, _p = read_adjudications(tmp_path / "again.xlsx", disc)
    assert adj3["reason"].tolist() == ["-meaning matches"]

    # A discrepancy that disappeared (the coders now agree) keeps its row as 'stale'.
    fewer = disc.iloc[1:]
    counts = write_queue(fewer, None, tmp_path / "stale.csv", existing_adjudications=adj)
    assert counts["n_stale"] == 1
    adj4, problems4 = read_adjudications(tmp_path / "stale.csv", fewer)
    assert not adj4["accepted"].any()
    assert problems4["reason"].str.startswith("unknown discrepancy id").tolist() == [True]


def test_bad_rows_are_reported_per_row(disc, tmp_path):
    ids = list(disc["discrepancy_id"])
    path = tmp_path / "filled.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["discrepancy_id", "decision", "reason", "adjudicator"])
        w.writerows([
            [ids[0], "maybe", "", "jm"],  # row 2: bad decision
            [ids[1], "apply", "", ""],  # row 3: no adjudicator
            ["Dnope", "apply", "", "jm"],  # row 4: unknown id
            ["", "no", "", "jm"],  # row 5: no id
            [ids[2], "apply", "", "jm"],  # rows 6 and 7: conflicting
            [ids[2], "no", "", "ak"],
            [ids[1], "", "", ""],  # row 8: open, not a problem
        ])
    adj, problems = read_adjudications(path, disc)
    assert problems[["source_file", "source_row", "column_name"]].values.tolist() == [
        ["filled.csv", 2, "decision"], ["filled.csv", 3, "adjudicator"],
        ["filled.csv", 4, "discrepancy_id"], ["filled.csv", 5, "discrepancy_id"],
        ["filled.csv", 6, "decision"], ["filled.csv", 7, "decision"],
    ]
    assert problems["reason"].iloc[0] == "bad decision 'maybe' (use 'apply' or 'do not apply')"
    assert "conflicting decisions" in problems["reason"].iloc[4]
    assert not adj["accepted"].any()


def test_identical_duplicates_count_once(disc, tmp_path):
    path = tmp_path / "filled.csv"
    did = disc.at[0, "discrepancy_id"]
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([["discrepancy_id", "decision", "adjudicator"],
                                  [did, "apply", "jm"], [did, "yes", "ak"]])
    adj, problems = read_adjudications(path, disc)
    assert adj["accepted"].tolist() == [True, False]
    assert problems["reason"].tolist() == ["duplicate of row 2 (same decision); ignored"]


def test_a_years_decisions_are_those_read_against_its_discrepancies(disc, tmp_path,
                                                                     monkeypatch):
    """`decisions_for` (a year's reconciliation) gives the rows `read_adjudications` gives for
    the same discrepancies, restricted to their ids, whatever else the file holds (other
    years' ids, conflicts, identical duplicates, a bad decision, no adjudicator, open rows);
    the file is parsed once until its content changes."""
    from pipeline.core.reconciliation import adjudications

    ids = disc["discrepancy_id"].tolist()
    rows = [["discrepancy_id", "decision", "reason", "adjudicator"],
            [ids[0], "apply", "clear", "jm"], [ids[0], "yes", "", "ak"],      # same decision
            [ids[1], "apply", "", "jm"], [ids[1], "no", "", "ak"],            # conflicting
            [ids[2], "maybe", "", "jm"],                                      # bad decision
            ["Dother", "apply", "", "jm"], ["Dother", "no", "", "ak"],        # another year's
            ["Dopen", "", "", ""], ["", "apply", "", "jm"],                   # open; no id
            [ids[2], "do not apply", "", ""]]                                 # no adjudicator
    path = tmp_path / "filled.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    parses = []
    real = adjudications.read_tables
    monkeypatch.setattr(adjudications, "read_tables", lambda p: (parses.append(p), real(p))[1])
    for year in (disc.iloc[[0]], disc.iloc[[1, 2]], disc, disc.iloc[:0]):
        full, _problems = read_adjudications(path, year)
        expected = full[full["discrepancy_id"].isin(year["discrepancy_id"])]
        pd.testing.assert_frame_equal(adjudications.decisions_for(path, year), expected)
    assert adjudications.decisions_for(path, disc)["accepted"].tolist() == [
        True, False, False, False, False, False]
    before = len(parses)
    mine = adjudications.decisions_for(path, disc)
    mine["accepted"] = True                      # a caller's changes stay its own
    assert len(parses) == before                 # kept while the file is the same
    assert adjudications.decisions_for(path, disc)["accepted"].tolist()[0:2] == [True, False]
    rows[1][1] = "no"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    changed = adjudications.decisions_for(path, disc)
    assert len(parses) == before + 1 and changed["accepted"].tolist()[:2] == [False, False]


def test_missing_columns_is_one_problem(disc, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("id,verdict\nD1,apply\n", encoding="utf-8")
    adj, problems = read_adjudications(path, disc)
    assert adj.empty and problems["source_row"].tolist() == [1]


# ----------------------------------------------------------------------------------- final codes


def adjudications(disc, decided: dict[int, tuple[str, str]]):
    rows = [{"discrepancy_id": disc.at[i, "discrepancy_id"], "decision": d, "decision_text": d,
             "reason": "", "adjudicator": who, "accepted": True, "source_file": "q.csv",
             "source_row": i + 2} for i, (d, who) in decided.items()]
    return pd.DataFrame(rows, columns=ADJUDICATION_COLUMNS)


def test_final_code_provenance(disc):
    adj = adjudications(disc, {0: ("do not apply", "jm+ak"), 1: ("apply", "jm+ak consensus")})
    final = final_codes(APPS, UNITS, adj, disc, keyword_standin(KEYWORD), ANSWERS)
    assert list(final.columns) == FINAL_COLUMNS
    got = final[["answer_id", "code_id", "provenance", "decided_by"]].values.tolist()
    assert got == [
        ["A1", "collaboration", "agreed", "jm+ak"],
        ["A2", "time_allocated", "adjudicated", "jm+ak consensus"],
        # A3 follow_the_process: decided 'do not apply' -> no row
        ["A4", "knowledgeable", "unresolved", None],  # single-coded, undecided
        ["A5", "time_allocated", "keyword", "keyword coder"],  # 2024-25: no human coding
    ]
    assert final.set_index("answer_id").at["A5", "school_year"] == "2024-25"
    assert final.set_index("answer_id").at["A2", "discrepancy_id"] == disc.at[1, "discrepancy_id"]
    summary = reconciliation_summary(disc, adj, final)
    assert summary["n_discrepancies"] == 3
    assert summary["n_decided_apply"] == 1 and summary["n_decided_do_not_apply"] == 1
    assert summary["n_unresolved"] == 1 and summary["n_final_codes"] == 3
    assert summary["by_provenance"] == {"agreed": 1, "adjudicated": 1, "unresolved": 1,
                                        "trained_suggestion": 0, "zero_shot_suggestion": 0,
                                        "keyword": 1}


def test_unaccepted_decisions_leave_the_discrepancy_unresolved(disc):
    adj = adjudications(disc, {1: ("apply", "")})
    adj["accepted"] = False
    final = final_codes(APPS, UNITS, adj, disc, keyword_standin(KEYWORD), ANSWERS)
    assert final.set_index("answer_id").at["A2", "provenance"] == "unresolved"
    assert "agreed" not in set(final.loc[final["answer_id"] != "A1", "provenance"])


def test_no_human_coding_means_keyword_codes_everywhere():
    empty_apps = apps()
    empty_units = pd.DataFrame(columns=["answer_id", "coder", "question_id", "school_year"])
    disc = discrepancies(empty_apps, empty_units, ANSWERS, KEYWORD, "jm", "ak")
    final = final_codes(empty_apps, empty_units, adjudications(disc, {}), disc,
                        keyword_standin(KEYWORD), ANSWERS)
    assert final[["answer_id", "provenance"]].values.tolist() == [["A2", "keyword"],
                                                                  ["A5", "keyword"]]
    assert disc.empty


def test_out_of_date_discrepancies_are_refused(disc):
    more = apps(("ak", "A2", "time_allocated"))
    with pytest.raises(ValueError, match="out of date"):
        final_codes(pd.concat([APPS, more]), UNITS, adjudications(disc, {}), disc,
                    keyword_standin(KEYWORD), ANSWERS)


# ----------------------------------------------------------------------------- suggestions stand in

SHA = "0123456789ab" + "c" * 52


def suggestions(*rows):
    """coding.suggestions rows: (answer_id, code_id, source, probability)."""
    info = ANSWERS.set_index("answer_id")
    return pd.DataFrame(
        [{"answer_id": a, "school_year": info.at[a, "school_year"],
          "question_id": info.at[a, "question_id"], "framework": CODE[k][0],
          "dimension": CODE[k][1], "code_id": k, "probability": p, "source": src,
          "evidence_text": None, "evidence_start": None, "evidence_end": None,
          "model_sha256": SHA, "codebook_version": "v1"} for a, k, src, p in rows])


SUGGESTED = suggestions(
    ("A1", "knowledgeable", "zero_shot", 0.7),            # 2020-21 is human-coded: ignored
    ("A4", "knowledgeable", "trained", 0.9),              # 2023-24: A4 is in a human unit
    ("A5", "time_allocated", "zero_shot", 0.8),           # 2024-25: no human coding
    ("A5", "follow_the_process", "trained", 0.6),
    ("A5", "follow_the_process", "zero_shot", 0.95),      # the same code twice: trained wins
)


def test_suggestion_standin_rows():
    s = suggestion_standin(SUGGESTED)
    assert list(s.columns) == ["answer_id", "framework", "dimension", "code_id", "provenance",
                               "decided_by"]
    got = {(r.answer_id, r.code_id): r.provenance for r in s.itertuples()}
    assert got == {("A1", "knowledgeable"): "zero_shot_suggestion",
                   ("A4", "knowledgeable"): "trained_suggestion",
                   ("A5", "time_allocated"): "zero_shot_suggestion",
                   ("A5", "follow_the_process"): "trained_suggestion"}
    assert set(s["decided_by"]) == {"suggester 0123456789ab"}
    assert suggestion_standin(SUGGESTED.iloc[:0]).empty
    with pytest.raises(ValueError, match="unknown source"):
        suggestion_standin(SUGGESTED.assign(source="keyword"))


def test_suggestions_stand_in_only_where_nobody_coded(disc):
    adj = adjudications(disc, {0: ("do not apply", "jm+ak"), 1: ("apply", "jm+ak consensus")})
    final = final_codes(APPS, UNITS, adj, disc, suggestion_standin(SUGGESTED), ANSWERS)
    got = final[["answer_id", "code_id", "provenance", "decided_by"]].values.tolist()
    assert got == [
        ["A1", "collaboration", "agreed", "jm+ak"],          # human years: as before,
        ["A2", "time_allocated", "adjudicated", "jm+ak consensus"],   # no suggestion added
        ["A4", "knowledgeable", "unresolved", None],
        ["A5", "follow_the_process", "trained_suggestion", "suggester 0123456789ab"],
        ["A5", "time_allocated", "zero_shot_suggestion", "suggester 0123456789ab"],
    ]
    human = final_codes(APPS, UNITS, adj, disc, keyword_standin(KEYWORD), ANSWERS)
    assert human[human["school_year"] != "2024-25"].equals(
        final[final["school_year"] != "2024-25"])
    summary = reconciliation_summary(disc, adj, final)
    assert summary["by_provenance"] == {"agreed": 1, "adjudicated": 1, "unresolved": 1,
                                        "trained_suggestion": 1, "zero_shot_suggestion": 1,
                                        "keyword": 0}


def test_standin_by_year_falls_back_to_the_keyword_coder():
    empty = apps()
    no_units = pd.DataFrame(columns=["answer_id", "coder", "question_id", "school_year"])
    no_disc = discrepancies(empty, no_units, ANSWERS, KEYWORD, "jm", "ak")

    def final(sugg):
        standin = standin_by_year(sugg, KEYWORD, ANSWERS)
        return final_codes(empty, no_units, adjudications(no_disc, {}), no_disc, standin,
                           ANSWERS)[["answer_id", "code_id", "provenance"]].values.tolist()

    # no suggestions at all (coding.suggestions not built): the keyword coder everywhere
    assert final(SUGGESTED.iloc[:0]) == [["A2", "time_allocated", "keyword"],
                                         ["A5", "time_allocated", "keyword"]]
    # suggestions for 2024-25 only: that year is suggested, 2020-21 keeps the keyword coder
    only_2024 = SUGGESTED[SUGGESTED["school_year"] == "2024-25"]
    assert final(only_2024) == [["A2", "time_allocated", "keyword"],
                                ["A5", "follow_the_process", "trained_suggestion"],
                                ["A5", "time_allocated", "zero_shot_suggestion"]]


def test_a_standin_frame_must_say_its_provenance(disc):
    with pytest.raises(ValueError, match="lack column"):
        final_codes(APPS, UNITS, adjudications(disc, {}), disc, KEYWORD, ANSWERS)


def test_an_empty_queue_is_written_with_its_header(tmp_path):
    """No discrepancy: both files hold the header (and the workbook its count line)."""
    empty = discrepancies(APPS.iloc[:0], UNITS, ANSWERS, KEYWORD, "jm", "ak")
    counts = write_queue(empty, tmp_path / "q.xlsx", tmp_path / "q.csv")
    assert counts == {"n_rows": 0, "n_open": 0, "n_decided": 0, "n_stale": 0}
    ws = openpyxl.load_workbook(tmp_path / "q.xlsx")["queue"]
    assert [c.value for c in ws[2]] == QUEUE_COLUMNS and ws.max_row == 2
    with (tmp_path / "q.csv").open(encoding="utf-8", newline="") as fh:
        assert list(csv.reader(fh)) == [QUEUE_COLUMNS]
