"""The findings report kept while what it is made from is the same.

The report is a function of its inputs (ReportInputs: the warehouse tables it reads and its
settings), the templates it is rendered with, the pipeline's code and the libraries that
compute and render it; the name check's verdict also depends on the roster. A report that passed the check is stored in the result cache under
a key of all of them (`report_key`), and a run whose key finds it writes those texts again
instead of building, rendering and scanning them: about a second of the sample's run, most of
it scipy's import for the compared years' statistics. A report with a name in it is never
stored, so it is built and scanned on every run, like a failing contract check.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

import pandas as pd

from pipeline.core import frame_memo
from pipeline.core.privacy.redact import roster_fingerprint
from pipeline.core.report.inputs import ReportInputs
from pipeline.core.report.render import template_dirs
from pipeline.core.result_cache import ResultCache
from pipeline.core.warehouse.fingerprint import files_digest, library_versions

log = logging.getLogger(__name__)

KIND = "findings report"


@dataclass
class Rendered:
    html: str
    markdown: str
    compared: tuple[str, str] | None   # the two years the report compares


def report_key(inputs: ReportInputs, roster: list) -> str | None:
    """sha256 of everything the report and its name check depend on: every input frame and
    setting, the templates' files, the libraries' versions, the roster's entries
    (redact.load_roster) and (frame_memo.key) the code. None when a frame holds a value
    pandas cannot hash (a list): the report is then made every time, as before it was kept."""
    frames, settings = [], []
    for f in dataclasses.fields(inputs):
        value = getattr(inputs, f.name)
        if isinstance(value, pd.DataFrame):
            frames += [f.name, value]
        else:
            settings.append(f"{f.name}={value!r}")
    templates = [f"{folder}={files_digest(folder)}" for folder in template_dirs(inputs.templates)]
    try:
        return frame_memo.key(KIND, *settings, f"templates {templates}",
                              library_versions("jinja2", "scipy", "numpy", "pandas"),
                              f"roster {roster_fingerprint(roster)}", *frames)
    except TypeError as exc:
        log.warning("findings report not kept: an input cannot be hashed (%s)", exc)
        return None


def load(cache: ResultCache, key: str | None) -> Rendered | None:
    payload = cache.load(key) if key is not None else None
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        compared = tuple(data["compared"]) if data["compared"] else None
        return Rendered(str(data["html"]), str(data["markdown"]), compared)
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("stored findings report unusable (%s): building it again", exc)
        return None


def store(cache: ResultCache, key: str | None, rendered: Rendered) -> None:
    """Keep a report that passed the name check (never one that did not)."""
    if key is None:
        return
    cache.store(key, json.dumps({"html": rendered.html, "markdown": rendered.markdown,
                                 "compared": list(rendered.compared or [])}).encode())
