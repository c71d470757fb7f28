"""`survey-pipeline code` and `survey-pipeline codebook check`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

COLUMNS = ["id", "framework", "dimension", "code", "pattern", "matched_text", "start", "end"]


def answers(tmp_path: Path) -> Path:
    path = tmp_path / "answers.csv"
    pd.DataFrame(
        {
            "rid": ["r1", "r2", "r3", "r4"],
            "answer": [
                "We collaborated and then collaborated more. Not enough time!",
                "n/a",
                "",
                "[External Coach name] was very supportive",
            ],
        }
    ).to_csv(path, index=False)
    return path


def test_code_writes_one_row_per_application(tmp_path):
    out = tmp_path / "out.csv"
    res = runner.invoke(
        app,
        ["code", str(answers(tmp_path)), "--text-column", "answer", "--id-column", "rid",
         "--codebook", str(ROOT / "codebooks"), "--output", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == COLUMNS
    assert set(df["id"]) == {"r1", "r4"}  # ids with no code give no row
    r1 = df[df["id"] == "r1"].set_index("code")
    assert {"collaboration", "time_allocated"} <= set(r1.index)
    assert not r1.index.duplicated().any()
    first = r1.loc["collaboration"]
    assert (first["matched_text"], first["start"], first["end"]) == ("collaborated", 3, 15)
    assert df.loc[df["id"] == "r4", "code"].tolist() == ["coaching_support"]


def test_code_all_hits_and_stdout(tmp_path):
    res = runner.invoke(
        app,
        ["code", str(answers(tmp_path)), "--text-column", "answer", "--id-column", "rid",
         "--codebook", str(ROOT / "codebooks/scale.yaml"), "--all-hits"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("r1,scale,depth,collaboration")]
    assert len(lines) == 2


def test_code_bad_column_and_bad_codebook(tmp_path):
    res = runner.invoke(
        app,
        ["code", str(answers(tmp_path)), "--text-column", "nope", "--codebook",
         str(ROOT / "codebooks")],
    )  # fmt: skip
    assert res.exit_code == 1
    assert "no column 'nope'" in res.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("framework: x\ndimensions: {d: D}\ncodes:\n  - id: a\n    dimension: e\n"
                   "    patterns: [a]\n")  # fmt: skip
    res = runner.invoke(
        app, ["code", str(answers(tmp_path)), "--text-column", "answer", "--codebook", str(bad)]
    )
    assert res.exit_code == 1
    assert f"{bad}:5: code 'a': unknown dimension 'e'" in res.output


def test_codebook_check_summary():
    res = runner.invoke(app, ["codebook", "check", str(ROOT / "codebooks")])
    assert res.exit_code == 0, res.output
    assert "framework scale" in res.output and "framework relational_trust" in res.output
    assert "shift_in_reform_ownership (Shift in reform ownership): 13 codes" in res.output
    assert "version " in res.output and res.output.strip().endswith("OK")


def test_codebook_check_invalid(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("framework: x\ndimensions: {d: D}\ncodes:\n  - id: a\n    dimension: d\n"
                   "    patterns: [{regex: '(unclosed'}]\n")  # fmt: skip
    res = runner.invoke(app, ["codebook", "check", str(bad)])
    assert res.exit_code == 1
    (line,) = res.output.strip().splitlines()
    assert line.startswith(f"error: {bad}:6: ") and "invalid regex" in line
