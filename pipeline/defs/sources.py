"""What enters the pipeline from outside, as external assets (no materialisation function):
the yearly survey exports, the coders' sheets, the adjudication file and the codebooks.

They are in the asset graph so that "which file fed which table" can be read from the lineage:
`exports/survey_exports` (one partition per school year) is upstream of raw/survey_rows,
`exports/coder_sheets` of coding/human_applications, `exports/adjudications` of the assets that
read the decisions, and `codebooks/yaml_files` of every asset that reads the codebooks through
the `Codebooks` resource. The assets that read the files record what they read as an
AssetObservation of these keys (`file_observations`): each file's label (the name as staging
labels it: a file named after a person shows as `file-<sha256 prefix>.<ext>`, never its name),
sha256, rows and reader kind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd

from pipeline.core.privacy.labels import identifier_guard
from pipeline.defs.partitions import school_years

SURVEY_EXPORTS = dg.AssetKey(["exports", "survey_exports"])
CODER_SHEET_FILES = dg.AssetKey(["exports", "coder_sheets"])
ADJUDICATION_FILE = dg.AssetKey(["exports", "adjudications"])
CODEBOOK_FILES = dg.AssetKey(["codebooks", "yaml_files"])

external_assets = [
    dg.AssetSpec(SURVEY_EXPORTS, group_name="exports", partitions_def=school_years,
                 kinds={"csv", "xlsx"},
                 description="The survey platform's export files of one school year, as landed "
                 "in <landing>/<school year>/ with its mapping.yaml (Google Forms, Qualtrics, "
                 "SurveyMonkey CSV or XLSX). Observed by raw/survey_rows each time it reads "
                 "them: per file its label, sha256, records and reader."),
    dg.AssetSpec(CODER_SHEET_FILES, group_name="exports", kinds={"xlsx", "csv"},
                 description="The human coders' sheets in <coder sheets>/ (one workbook or CSV "
                 "per coder, every school year in one set). Observed by "
                 "coding/human_applications: per file its label, sha256 and rows."),
    dg.AssetSpec(ADJUDICATION_FILE, group_name="exports", kinds={"xlsx", "csv"},
                 description="The researchers' filled adjudication queue "
                 "(<coder sheets>/adjudications.xlsx or .csv). Observed by coding/adjudications: "
                 "its sha256 and rows."),
    dg.AssetSpec(CODEBOOK_FILES, group_name="codebooks", kinds={"yaml"},
                 description="The YAML codebooks (codebooks/*.yaml, or $SURVEY_CODEBOOKS), read "
                 "through the Codebooks resource, parsed once per process and content hash. "
                 "coding/codebook_codes writes them to the warehouse and observes their "
                 "versions here."),
]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_file_observations(files: pd.DataFrame, roster, year: str
                             ) -> list[dg.AssetObservation]:
    """One observation of exports/survey_exports[year] per row of raw.export_files as
    raw/survey_rows wrote them: the staging label (never the raw name), sha256, records read as
    rows, problems, reader kind and load status."""
    guard = identifier_guard(roster)
    out = []
    for f in files.itertuples(index=False):
        sha = f.file_sha256 if isinstance(f.file_sha256, str) else None
        label = guard.file_label(str(f.file_name), sha)
        out.append(dg.AssetObservation(
            asset_key=SURVEY_EXPORTS, partition=year,
            description=f"{label}: {f.status}",
            metadata={"file": label, "sha256": sha or "", "status": str(f.status),
                      "reader": str(f.reader) if isinstance(f.reader, str) else "",
                      "rows": _int(f.n_rows), "records": _int(f.n_records),
                      "problems": _int(f.n_problems)}))
    return out


def file_observations(key: dg.AssetKey, paths: list[Path], roster,
                      rows: dict[str, int] | None = None) -> list[dg.AssetObservation]:
    """One observation of `key` per file read (coder sheets, adjudication file): its label
    (as staging labels export files: no person's name), sha256 and, where known, rows."""
    guard = identifier_guard(roster)
    out = []
    for path in paths:
        sha = sha256_of(path)
        label = guard.file_label(path.name, sha)
        metadata = {"file": label, "sha256": sha}
        if rows is not None and path.name in rows:
            metadata["rows"] = int(rows[path.name])
        out.append(dg.AssetObservation(asset_key=key, description=label, metadata=metadata))
    return out


def _int(value) -> int:
    return 0 if value is None or pd.isna(value) else int(value)
