"""Where things live. Defaults point into this repository; environment variables override."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _path(env: str, default: Path) -> str:
    return os.environ.get(env) or str(default)


def landing_dir() -> str:
    return _path("SURVEY_LANDING_DIR", SAMPLE_LANDING)


def roster_path() -> str:
    return _path("SURVEY_ROSTER", ROOT / "data" / "sample" / "roster.csv")


def warehouse_path() -> str:
    return _path("SURVEY_WAREHOUSE", ROOT / "warehouse" / "survey.duckdb")


def codebook_dir() -> str:
    return _path("SURVEY_CODEBOOKS", ROOT / "codebooks")


def coder_sheets_dir() -> str:
    return _path("SURVEY_CODER_SHEETS", ROOT / "data" / "sample" / "coding")


def reports_dir() -> str:
    return _path("SURVEY_REPORTS", ROOT / "reports")


DEFAULT_SALT = "survey-coding-pipeline"
SAMPLE_LANDING = ROOT / "data" / "sample" / "landing"


def pseudonym_salt() -> str:
    # Set SURVEY_PSEUDONYM_SALT privately in production: with the default, anyone holding the
    # list of school names can recompute the pseudonyms.
    return os.environ.get("SURVEY_PSEUDONYM_SALT", DEFAULT_SALT)


def public_salt_on_real_data(salt: str, landing: str) -> bool:
    """True when real (non-sample) exports would be pseudonymised with the public salt."""
    return salt == DEFAULT_SALT and Path(landing).resolve() != SAMPLE_LANDING.resolve()
