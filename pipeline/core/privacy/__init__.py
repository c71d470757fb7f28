"""Privacy: names never leave the raw layer.

In: a roster (full_name, role) and text. Out: redacted text with an audit of each replacement
(raw.redactions), and scans that find names a stage let through.

    redact.py     the redactor staging uses (exact names, variants, near misses)
    name_scan.py  NameScanner (the redactor's own matching, for later stages) and FuzzyNameScan
                  (an independent method, for the check on staged answers)
    labels.py     file names and ids made from them, redacted before they leave raw
"""
