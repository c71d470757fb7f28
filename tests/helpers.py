"""Shared test helpers: paths to the sample and the real fixtures, a tiny landing area written by
hand, resources pointing into a temporary folder. Imported by the tests that need them
(conftest.py holds only fixtures)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FIXTURES = ROOT.parent / "shared" / "fixtures" / "real"
SAMPLE = ROOT / "data" / "sample"

GF_HEADER = ("Timestamp,Email Address,Which school are you from?,Who was your coach today?,"
             "What is your role?,What worked from today's coaching session?,"
             "In what ways can we improve today's coaching session?")
GF_MAPPING = """school_year: "2020-21"
source: google-forms
files: "session-*.csv"
columns:
  submitted_at: Timestamp
  school: Which school are you from?
  coach: Who was your coach today?
  role: What is your role?
  worked: What worked from today's coaching session?
  improve: In what ways can we improve today's coaching session?
identifying: [Email Address]
timestamp_format: "%m/%d/%Y %H:%M:%S"
"""
ROSTER = "full_name,role\nMarisol Okafor,external coach\nTeodora Vasquez-Lind,principal\n"


def write_landing(root: Path, files: dict[str, str], mapping: str = GF_MAPPING,
                  year: str = "2020-21") -> Path:
    year_dir = root / "landing" / year
    year_dir.mkdir(parents=True, exist_ok=True)
    (year_dir / "mapping.yaml").write_text(mapping, encoding="utf-8")
    for name, text in files.items():
        (year_dir / name).write_bytes(text.encode("utf-8"))
    return root / "landing"


SESSION_1 = "\r\n".join([
    GF_HEADER,
    '9/14/2020 15:02:11,a@x.org,Lincoln Elementary,Marisol Okafor,Teacher,'
    '"Marisol helped us follow the process.","We ran out of time"',
    '9/14/2020 15:03:40,b@x.org,Lincoln Elementary,Marisol Okafor,Principal,"NA",""',
    '9/14/2020 15:03:40,b@x.org,Lincoln Elementary,Marisol Okafor,Principal,"NA",""',
    '9/14/2020 15:05:00,c@x.org,Park Middle,marisol okafor,Teacher,"",""',
    '9/14/2020 15:09:00,d@x.org,Park Middle,Marisol Okafor,Teacher,'
    '"Thanks to Vasquez-Lind\'s data slides,\nwe collaborated",none',
]) + "\r\n"


def make_resources(root: Path, wait_seconds: float = 1, **paths) -> dict:
    """Resources writing into `root` (a tmp folder): its landing/, roster.csv, coding/,
    reports/ and wh.duckdb, the shipped codebooks; keyword arguments override a path."""
    from pipeline.defs.resources import Codebooks, ProjectPaths, Warehouse

    defaults = {"landing_dir": root / "landing", "roster_path": root / "roster.csv",
                "codebook_dir": ROOT / "codebooks", "coder_sheets_dir": root / "coding",
                "reports_dir": root / "reports"}
    chosen = {k: str(v) for k, v in {**defaults, **paths}.items()}
    codebook_dir = chosen.pop("codebook_dir")
    return {
        "paths": ProjectPaths(**chosen, pseudonym_salt="test"),
        "codebooks": Codebooks(codebook_dir=codebook_dir),
        "warehouse": Warehouse(path=str(root / "wh.duckdb"), wait_seconds=wait_seconds),
    }
