"""Synthetic dual coding of the bundled sample: two coders' sheets and an adjudication file.

    python -m tools.sample.synth_coding [--sample data/sample] [--codebooks codebooks]
                                         [--seed 2024]

writes data/sample/coding/coder_sheets.xlsx (tabs coder_jm and coder_ak, long layout),
data/sample/coding/adjudications.csv (the filled queue, most but not all discrepancies decided)
and data/sample/coding/README.md. Same inputs and seed -> byte-identical files.

How it is made:
1. A *true* code set per substantive answer: the keyword coder's codes minus some false
   positives (generic keywords in another sense), plus meaning-based codes the keywords miss
   (MEANING_RULES: "teamwork" is Collaboration, "too much to cover" is time allocated...).
2. Each coder = the truth with code-specific noise (NOISE: easy codes are rarely missed, hard
   ones often missed and sometimes added where a keyword matched in another sense).
3. A few realistic slips (ERRORS) that validation must quarantine: typos in code names, a wrong
   category, a duplicate row, an unknown answer id, a code on a non-substantive answer.
4. The adjudication file: the discrepancies after validation, about 85% decided as the truth
   says, by 'jm+ak consensus'.
Runs in about 10 s (staging the sample and building the keyword coder).
"""

from __future__ import annotations

import argparse
import random
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from pipeline.core.coding.codebook import load_codebooks
from pipeline.core.coding.coder_sheets import read_coder_sheets
from pipeline.core.coding.matcher import KeywordCoder
from pipeline.core.coding.sheet_validation import sheet_codes, validate_coder_sheets
from pipeline.core.ingest import raw, staging
from pipeline.core.privacy.redact import load_roster
from pipeline.core.reconciliation.discrepancies import discrepancies
from pipeline.core.reconciliation.queue import (
    APPLY,
    DO_NOT_APPLY,
    queue_frame,
    write_queue_csv,
)

CODERS = ("coder_jm", "coder_ak")
ADJUDICATOR = "jm+ak consensus"
SHEET_COLUMNS = ["answer_id", "framework", "category", "code", "note"]
FRAMEWORK_NAMES = {"scale": "Scale", "relational_trust": "Relational Trust"}
# Meaning the keywords miss: regex on the redacted answer -> code.
MEANING_RULES = {
    "collaboration": r"\bteamwork\b|everyone had a voice|everybody'?s voice|learn\w* from each "
                     r"other|shar\w+ (?:ideas|our thinking)|bounc\w+ ideas",
    "time_allocated": r"too much to cover|start on time|ran long|\bin (?:60|sixty) minutes",
    "follow_the_process": r"\bchecklist|step[- ]by[- ]step|\bstructure\b|next steps?\b",
    "knowledgeable": r"knows so much|really knows|\bexpert\b",
    "accomplishes_tasks": r"\bwe (?:completed|finished)\b|got through",
    "all_team_members": r"\beveryone (?:had|participated|contributed|was)\b|\beverybody\b",
    "sense_of_community": r"\bfelt heard\b|\bfamily\b|together as a staff",
    "coaching_support": r"\bour coach\b|\bthe coach\b",
}
# Keyword codes often hit in another sense: the truth drops this share of their hits.
FALSE_POSITIVE_RATE = {"support": 0.3, "focused": 0.3, "planning": 0.25, "change": 0.3,
                       "growth": 0.3, "leadership": 0.25, "direction": 0.3, "we_will": 0.3,
                       "next_year": 0.2, "our_environment": 0.3, "norms": 0.2}
DEFAULT_FALSE_POSITIVE_RATE = 0.04
# (share of true codes a coder applies, chance of applying a keyword hit that is not true,
#  chance of applying the code to any other answer)
NOISE = {
    "easy": (0.97, 0.10, 0.001),
    "medium": (0.88, 0.30, 0.004),
    "hard": (0.62, 0.45, 0.012),
}
EASY = {"time_allocated", "collaboration", "data_analysis", "accomplishes_tasks",
        "coaching_support", "follow_the_process", "next_year", "friendly"}
HARD = {"support", "focused", "planning", "change", "growth", "leadership", "direction",
        "norms", "our_environment", "all_team_members", "sense_of_community", "knowledgeable",
        "effective", "produces_results"}
# Per-coder tilt: jm applies a little more, ak a little less.
TILT = {"coder_jm": 1.03, "coder_ak": 0.97}
DECIDED_SHARE = 0.85
FIXED_TIME = datetime(2024, 12, 1, 9, 0, 0)


def difficulty(code_id: str) -> str:
    return "easy" if code_id in EASY else "hard" if code_id in HARD else "medium"


def staged_answers(sample_dir: Path) -> pd.DataFrame:
    """staging.answers of every school year of the sample (answer ids do not depend on the
    salt)."""
    roster = load_roster(sample_dir / "roster.csv")
    frames = []
    for year in raw.school_years(sample_dir / "landing"):
        year_dir = sample_dir / "landing" / year
        data = raw.read_year(year_dir, loaded_at=FIXED_TIME)
        mapping, _files = raw.year_exports(year_dir)
        frames.append(staging.stage_year(data.export_files, data.survey_rows, mapping, roster,
                                         staged_at=FIXED_TIME).answers)
    return pd.concat(frames, ignore_index=True)


def true_codes(answers: pd.DataFrame, keyword: pd.DataFrame, rng: random.Random
               ) -> dict[str, set[str]]:
    """answer id -> true code ids, for substantive answers."""
    truth: dict[str, set[str]] = {a: set() for a in answers.loc[~answers["non_substantive"],
                                                                "answer_id"]}
    for aid, code in zip(keyword["id"], keyword["code_id"], strict=True):
        if aid in truth and rng.random() >= FALSE_POSITIVE_RATE.get(
                code, DEFAULT_FALSE_POSITIVE_RATE):
            truth[aid].add(code)
    rules = {c: re.compile(rx, re.IGNORECASE) for c, rx in MEANING_RULES.items()}
    for aid, text in zip(answers["answer_id"], answers["answer_text"], strict=True):
        if aid in truth:
            truth[aid] |= {c for c, rx in rules.items() if rx.search(text)}
    return truth


def code_as(coder: str, truth: dict[str, set[str]], keyword_hits: dict[str, set[str]],
            all_codes: list[str], rng: random.Random) -> dict[str, list[str]]:
    """One coder's codes per answer: the truth through NOISE."""
    tilt = TILT[coder]
    counts: dict[str, int] = {}
    for true in truth.values():
        for code in true:
            counts[code] = counts.get(code, 0) + 1
    # random additions scale with how common the code is (nobody adds a code never seen)
    common = {c: min(1.0, counts.get(c, 0) / len(truth) / 0.05) for c in all_codes}
    out = {}
    for aid, true in truth.items():
        applied = []
        for code in all_codes:
            keep, kw_false, other = NOISE[difficulty(code)]
            if code in true:
                p = min(keep * tilt, 0.995)
            elif code in keyword_hits.get(aid, ()):
                p = kw_false * tilt
            else:
                p = other * tilt * common[code]
            if rng.random() < p:
                applied.append(code)
        out[aid] = applied
    return out


def sheet_rows(coder: str, coded: dict[str, list[str]], codes: pd.DataFrame,
               rng: random.Random) -> list[list[str]]:
    """Long layout as the researchers worked: one row per code, labels as in the codebook."""
    info = codes.set_index("code_id")
    rows = []
    for aid, applied in coded.items():
        if not applied:
            rows.append([aid, "", "", "", ""])
        for code in applied:
            c = info.loc[code]
            label = c["label"]
            if coder == "coder_ak" and code == "accomplishes_tasks":
                label = "Accomplishing tasks"  # the study's other name for it (an alias)
            note = "borderline" if difficulty(code) == "hard" and rng.random() < 0.08 else ""
            rows.append([aid, FRAMEWORK_NAMES.get(c["framework"], c["framework"]),
                         c["dimension_label"], label, note])
    return rows


def inject_errors(sheets: dict[str, list[list[str]]], answers: pd.DataFrame,
                  rng: random.Random) -> list[str]:
    """The slips validation must catch; returns what was done (for the README)."""
    jm, ak = sheets["coder_jm"], sheets["coder_ak"]
    done = []

    def pick(rows, label):
        candidates = [i for i, r in enumerate(rows) if r[3] == label]
        return rng.choice(candidates)

    for rows, label, typo in ((jm, "Collaboration", "Colaboration"),
                              (jm, "Coaching support", "Coaching suport"),
                              (ak, "Follow the process", "Follow the proces")):
        rows[pick(rows, label)][3] = typo
        done.append(f"typo in a code name: {typo!r}")
    for rows, label, wrong in ((jm, "time allocated", "Depth"),
                               (ak, "Knowledgeable", "Personal regard")):
        rows[pick(rows, label)][2] = wrong
        done.append(f"wrong category: {label!r} filed under {wrong!r}")
    i = pick(ak, "Collaboration")
    ak.insert(i + 1, list(ak[i]))
    done.append("duplicate row (the same code twice on one answer)")
    i = pick(jm, "Planning")
    bad = jm[i][0][:-1] + ("0" if jm[i][0][-1] != "0" else "1")
    jm[i] = [bad, *jm[i][1:]]
    done.append("unknown answer id (one character mistyped)")
    na = answers.loc[answers["non_substantive"], "answer_id"].sort_values().iloc[0]
    ak.append([na, "Scale", "Sustainability", "Coaching support", ""])
    done.append("a code on a non-substantive answer")
    return done


def write_workbook(path: Path, sheets: dict[str, list[list[str]]]) -> None:
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False,
                                         "strings_to_numbers": False, "strings_to_urls": False})
    wb.set_properties({"title": "Synthetic coder sheets", "author": "synth_coding",
                       "created": FIXED_TIME})
    try:
        bold = wb.add_format({"bold": True})
        notes = wb.add_worksheet("_instructions")
        for i, line in enumerate([
            "SYNTHETIC coder sheets for the bundled sample (tools/sample/synth_coding.py).",
            "One tab per coder; tab name = coder id. Tabs starting with _ are not read.",
            "One row per code applied: answer_id, framework, category, code, note.",
            "An answer id with an empty code means: coded, nothing applies.",
        ]):
            notes.write_string(i, 0, line)
        for coder, rows in sheets.items():
            ws = wb.add_worksheet(coder)
            for j, col in enumerate(SHEET_COLUMNS):
                ws.write_string(0, j, col, bold)
            ws.set_column(0, 0, 16)
            ws.set_column(1, 3, 24)
            for i, row in enumerate(rows, start=1):
                for j, v in enumerate(row):
                    if v:
                        ws.write_string(i, j, v)
            ws.freeze_panes(1, 0)
    finally:
        wb.close()


def generate_coding_sample(sample_dir, codebook_dir, seed: int = 2024) -> dict:
    """Write <sample_dir>/coding/{coder_sheets.xlsx, adjudications.csv, README.md}; returns the
    counts written to the README."""
    sample_dir, out = Path(sample_dir), Path(sample_dir) / "coding"
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    answers = staged_answers(sample_dir)
    books = load_codebooks(codebook_dir)
    codes = sheet_codes(books)
    substantive = answers[~answers["non_substantive"]]
    keyword = KeywordCoder(books).code_frame(substantive, "answer_id", "answer_text")
    keyword_hits: dict[str, set[str]] = {}
    for aid, code in zip(keyword["id"], keyword["code_id"], strict=True):
        keyword_hits.setdefault(aid, set()).add(code)

    truth = true_codes(answers, keyword, rng)
    all_codes = list(codes["code_id"])
    sheets = {c: sheet_rows(c, code_as(c, truth, keyword_hits, all_codes, rng), codes, rng)
              for c in CODERS}
    slips = inject_errors(sheets, answers, rng)
    write_workbook(out / "coder_sheets.xlsx", sheets)

    rows = read_coder_sheets(out / "coder_sheets.xlsx")
    apps, units, quarantine = validate_coder_sheets(rows, answers, codes)
    disc = discrepancies(apps, units, answers, keyword, *CODERS)
    queue = queue_frame(disc, codebooks=books)   # labels and category, as the queue has them
    for i, d in enumerate(queue.itertuples(index=False)):
        if rng.random() >= DECIDED_SHARE:
            continue
        true = d.code_id in truth.get(d.answer_id, set())
        label = codes.set_index("code_id").at[d.code_id, "label"]
        queue.at[i, "decision"] = APPLY if true else DO_NOT_APPLY
        queue.at[i, "reason"] = (f"the answer is about {label}" if true else
                                 f"not {label} in this answer")
        queue.at[i, "adjudicator"] = ADJUDICATOR
        queue.at[i, "status"] = "decided"
    write_queue_csv(queue, out / "adjudications.csv")

    counts = {
        "seed": seed, "answers": len(answers), "substantive": len(substantive),
        "sheet_rows": {c: int((rows["coder"] == c).sum()) for c in CODERS},
        "applications": {c: int((apps["coder"] == c).sum()) for c in CODERS},
        "quarantined": len(quarantine), "slips": slips,
        "discrepancies": len(disc), "decided": int((queue["decision"] != "").sum()),
        "true_codes": sum(len(v) for v in truth.values()),
    }
    (out / "README.md").write_text(_readme(counts, quarantine), encoding="utf-8")
    return counts


def _readme(c: dict, quarantine: pd.DataFrame) -> str:
    slips = "\n".join(f"- {s}" for s in c["slips"])
    reasons = "\n".join(f"- `{r.source_sheet}` row {r.source_row}: {r.reason}"
                        for r in quarantine.itertuples(index=False))
    return f"""# data/sample/coding — SYNTHETIC dual coding of the sample answers

**Everything here is synthetic**, made by `tools/sample/synth_coding.py` for the synthetic
answers in `data/sample/landing`. No researcher coded these answers. Regenerate (byte-for-byte
identical):

```sh
.venv/bin/python -m tools.sample.synth_coding --sample data/sample --codebooks codebooks --seed {c['seed']}
```

- `coder_sheets.xlsx`: one tab per coder (`coder_jm`, `coder_ak`; `_instructions` is not read),
  long layout: `answer_id, framework, category, code, note`, one row per code applied, an
  answer id with an empty code for "coded, nothing applies". Both coders coded every
  substantive answer of both school years ({c['substantive']} of {c['answers']} answers).
- `adjudications.csv`: the adjudication queue (see docs/reconciliation.md) with
  {c['decided']} of {c['discrepancies']} discrepancies decided by `{ADJUDICATOR}`; the rest
  are left open and show up as unresolved final codes.

The coders are a "true" code set ({c['true_codes']} codes: keyword codes minus false positives
plus meaning-based codes) seen through code-specific noise: easy codes (time allocated,
Collaboration, Data analysis...) reach kappa around 0.9, hard ones (support, Focused, Planning,
Norms...) around 0.4.

## Counts

| | coder_jm | coder_ak |
|---|---:|---:|
| sheet rows | {c['sheet_rows']['coder_jm']} | {c['sheet_rows']['coder_ak']} |
| code applications after validation | {c['applications']['coder_jm']} | \
{c['applications']['coder_ak']} |

Discrepancies: {c['discrepancies']}; decided in `adjudications.csv`: {c['decided']}.

## Deliberate slips ({c['quarantined']} rows quarantined by validation)

{slips}

Quarantine as validation reports it:

{reasons}
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="data/sample")
    parser.add_argument("--codebooks", default="codebooks")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    counts = generate_coding_sample(args.sample, args.codebooks, args.seed)
    print(f"wrote {Path(args.sample) / 'coding'}: {counts['discrepancies']} discrepancies, "
          f"{counts['decided']} decided, {counts['quarantined']} sheet rows quarantined")


if __name__ == "__main__":
    main()
