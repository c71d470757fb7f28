"""Coding: codebooks, the keyword coder and the human coders' sheets.

In: staged answers, YAML codebooks, coders' sheets. Out: coding.codebook_codes,
coding.keyword_applications, coding.human_applications (unioned by the view
coding.code_applications), coding.coder_units, coding.sheet_quarantine, and blank coder
sheets for the next cycle. Suggestions by meaning: pipeline/core/suggest.

    codebook.py          loading codebooks (files, folders, uniqueness) and their frames
    codebook_model.py    Codebook > Code > Pattern: frozen, versioned objects (with meaning)
    codebook_parse.py    YAML with line numbers -> a validated Codebook (patterns included)
    matcher.py           the keyword coder (pure-Python reference path + the compiled scan)
    _scanner.c           the compiled batch scan (optional at install)
    keyword.py           keyword applications in the warehouse's shape, and their validations
    coder_sheets.py      reading human coders' sheets (long or wide layout) into sheet rows
    sheet_validation.py  sheet rows checked against the codebook and the answers
    dual_coding.py       importing a folder of sheets, coder pairs
    sheet_writer.py      next cycle's coder sheets (XLSX, blind by default)
"""
