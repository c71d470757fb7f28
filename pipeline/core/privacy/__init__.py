"""Privacy: names never leave the raw layer.

In: a roster (full_name, role) and text. Out: redacted text with an audit of each replacement
(raw.redactions), and scans that find names a stage let through.

    redact.py     the redactor staging uses (exact names, variants, near misses)
    name_scan.py  NameScanner (the redactor's own matching, staging's withholding scan) and
                  FuzzyNameScan (an independent method: the check on staged answers, and the
                  checks of coder sheets, adjudications, marts and the report through
                  names_in_frames / names_in_texts)
    labels.py     file names and ids made from them, redacted before they leave raw
"""
