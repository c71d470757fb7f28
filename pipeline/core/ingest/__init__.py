"""Ingestion: yearly survey exports -> raw rows -> staged answers.

In: export files in the landing folder (one sub-folder per school year, a mapping.yaml each).
Out: raw.export_files, raw.survey_rows, raw.quarantine (every row loaded or quarantined with a
reason) and staging.answers (one row per answered question, names redacted, ids pseudonymous).

    landing.py   the landing folder: years, files, their mapping
    mapping.py   mapping.yaml: which export column holds which field
    exports.py   readers for Google Forms, Qualtrics, Microsoft Forms, SurveyMonkey, CSV, XLSX
    hashing.py   file sha256 (provenance, the sensor's cursor)
    raw.py       export rows verbatim with provenance; files refused or unreadable, with why
    dates.py     one file's submission times, read one way (day/month order, window)
    aliases.py   school and coach spellings -> one name (the year's alias table)
    ids.py       stable answer / response ids, question ids
    staging.py   raw rows -> normalised, redacted answers
    years.py     the year lifecycle: years held, retiring one (raw.year_retirements), listing
"""
