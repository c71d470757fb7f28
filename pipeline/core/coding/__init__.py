"""Coding: codebooks, the keyword coder and the human coders' sheets.

In: staged answers, YAML codebooks, coders' sheets. Out: coding.codebook_codes,
coding.code_applications (keyword and human), coding.coder_units, coding.sheet_quarantine, and
blank coder sheets for the next cycle. Suggestions by meaning: pipeline/core/suggest.

    codebook.py      YAML codebooks -> frozen, versioned Codebook objects (with meaning)
    matcher.py       the keyword coder (pure-Python reference path + the compiled scan)
    _scanner.c       the compiled batch scan (optional at install)
    keyword.py       keyword applications in the warehouse's shape, and their validations
    coder_sheets.py  reading and validating human coders' sheets
    dual_coding.py   importing a folder of sheets, coder pairs
    sheet_writer.py  next cycle's coder sheets (XLSX, blind by default)
"""
