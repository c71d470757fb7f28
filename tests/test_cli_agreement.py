"""`survey-pipeline agreement RATINGS.csv [--json]`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app

runner = CliRunner()

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x
# 12 units, nominal, missing data; alpha = 0.743. Percent agreement 0.8181818 (irrCAC
# pa.coeff.raw on the same data, Gwet 2014 p. 120). Rows: observer, then the 12 values.
KRIPPENDORFF_2011_C = {
    "A": ["1", "2", "3", "3", "2", "1", "4", "1", "2", "", "", ""],
    "B": ["1", "2", "3", "3", "2", "2", "4", "1", "2", "5", "", "3"],
    "C": ["", "3", "3", "3", "2", "3", "4", "2", "2", "5", "1", ""],
    "D": ["1", "2", "3", "3", "2", "4", "4", "1", "2", "5", "1", ""],
}


def write_ratings(path: Path, by_coder: dict[str, list[str]], header: str = "unit,coder,value"):
    lines = [header]
    for coder, values in by_coder.items():
        lines += [f"u{i},{coder},{value}" for i, value in enumerate(values, 1)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(*args: str):
    return runner.invoke(app, ["agreement", *map(str, args)])


def test_text_output_krippendorff_example(tmp_path):
    result = run(write_ratings(tmp_path / "r.csv", KRIPPENDORFF_2011_C))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "units:" in out and "12" in out
    assert "coders:                 4" in out
    assert "percent agreement:      0.8182" in out
    assert "Krippendorff's alpha:   0.7434 (nominal)" in out
    assert "Cohen's kappa:          n/a" in out


def test_json_output_krippendorff_example(tmp_path):
    result = run(write_ratings(tmp_path / "r.csv", KRIPPENDORFF_2011_C), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert list(data) == [
        "n_units",
        "n_coders",
        "percent_agreement",
        "krippendorff_alpha_nominal",
        "cohen_kappa",
    ]
    assert data["n_units"] == 12 and data["n_coders"] == 4
    assert data["krippendorff_alpha_nominal"] == pytest.approx(0.743, abs=5e-4)
    assert data["percent_agreement"] == pytest.approx(0.8181818, abs=1e-7)
    assert data["cohen_kappa"] is None


def test_two_coders_report_cohen_kappa(tmp_path):
    # Wikipedia, "Cohen's kappa", worked example: 50 units, yes/yes 20, A yes B no 5,
    # A no B yes 10, no/no 15 -> kappa = 0.4, p_o = 0.7.
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    path = write_ratings(tmp_path / "r.csv", {"A": a, "B": b})
    data = json.loads(run(path, "--json").stdout)
    assert data["n_units"] == 50 and data["n_coders"] == 2
    assert data["cohen_kappa"] == pytest.approx(0.4)
    assert data["percent_agreement"] == pytest.approx(0.7)
    text = run(path)
    assert text.exit_code == 0 and "Cohen's kappa:          0.4000" in text.stdout


def test_na_text_is_a_value_and_empty_is_missing(tmp_path):
    # "NA" is a nominal value here, not missing; only an empty cell is missing.
    path = write_ratings(tmp_path / "r.csv", {"A": ["NA", "x", "", "y"], "B": ["NA", "x", "y", ""]})
    data = json.loads(run(path, "--json").stdout)
    assert data["n_units"] == 4
    assert data["percent_agreement"] == 1.0  # the two pairable units agree
    assert data["krippendorff_alpha_nominal"] == pytest.approx(1.0)


def test_utf8_bom_and_padded_header(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("\ufeffunit, coder ,value\nu1,A,a\nu1,B,a\nu2,A,b\nu2,B,b\n", encoding="utf-8")
    result = run(path, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["krippendorff_alpha_nominal"] == pytest.approx(1.0)


def _assert_one_error_line(result, *fragments: str):
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_fewer_than_two_coders_on_every_unit(tmp_path):
    path = write_ratings(tmp_path / "r.csv", {"A": ["a", "b", ""], "B": ["", "", "c"]})
    _assert_one_error_line(run(path), "at least two coders")
    _assert_one_error_line(run(path, "--json"), "at least two coders")


def test_single_coder(tmp_path):
    path = write_ratings(tmp_path / "r.csv", {"A": ["a", "b", "c"]})
    _assert_one_error_line(run(path), "at least two coders")


def test_single_value_in_domain(tmp_path):
    path = write_ratings(tmp_path / "r.csv", {"A": ["x", "x", "x"], "B": ["x", "x", ""]})
    _assert_one_error_line(run(path, "--json"), "only one value", "'x'")


def test_missing_file(tmp_path):
    _assert_one_error_line(run(tmp_path / "nope.csv"), "not found", "nope.csv")


def test_missing_column(tmp_path):
    path = write_ratings(tmp_path / "r.csv", {"A": ["a"]}, header="unit,rater,value")
    _assert_one_error_line(run(path), "missing column(s) coder", "r.csv")


def test_empty_file(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("", encoding="utf-8")
    _assert_one_error_line(run(path), "cannot read")


def test_duplicate_rating(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("unit,coder,value\nu1,A,a\nu1,A,b\nu1,B,a\n", encoding="utf-8")
    _assert_one_error_line(run(path), "'A'", "'u1'", "more than once")


def test_registered_on_the_shared_app():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "agreement" in result.stdout
