"""What researchers read and exchange: the coded answers as a spreadsheet, one answer
explained, and the REFI-QDA interchange files other qualitative tools open.

In: the codebooks (YAML, `pipeline.core.coding.codebook`), the staged answers and the
reconciled codes (frames of `staging.answers`, `coding.final_codes`, `coding.code_applications`,
`coding.suggestions`). Out: files under reports/ (always through `pipeline.core.files`) and
plain frames/dicts for the command line. Never a name from the raw layer: every text here is
the redacted answer.

Modules:
- `guids`: the stable GUIDs REFI-QDA needs, derived from our ids (same file on every run).
- `qdc`: codebooks -> `.qdc` (REFI-QDA codebook), and reading a `.qdc`.
- `qdc_import`: a `.qdc` (ours or another tool's) merged into our YAML codebooks.
- `qdpx`: the coded project -> `.qdpx` (zip of `project.qde` + one text source per answer).
- `qdpx_sessions`: each session's sources of the project rendered and name-checked once, kept
  in the result cache while the session's rows are unchanged.
- `project_names`: the roster check of the project, over its chunks (and per-session parts).
- `coded_answers`: one row per answer with its final codes, for reading (XLSX + CSV).
- `explain`: everything the warehouse knows about one answer, and its terminal rendering.
- `spreadsheet`: formula-safe XLSX/CSV writing shared by the workbooks here (`RunsKept`: a
  school year's rendered rows kept in the result cache).
- `xlsx_rows`: worksheet rows rendered in bulk as XML.
"""
