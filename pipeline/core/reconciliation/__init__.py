"""Reconciliation: two coders' codes -> agreement, discrepancies, adjudication, final codes.

In: human and keyword code applications, coder units, the adjudication file, suggestions (the
stand-in for years nobody coded). Out: coding.agreement, coding.discrepancies (and the queue
workbook), coding.adjudications, coding.final_codes, coding.keyword_quality.

    coefficients.py      layer 1: nominal coefficients on a units x coders matrix (kappa, alpha...)
    binary.py            layer 2: binary 2x2 statistics, vectorised, and their bootstrap intervals
    agreement.py         layer 3: the agreement table (per code ... overall) and keyword quality
    agreement_inputs.py  layer 3's inputs checked and held as integer arrays
    pair_counts.py       layer 3's 2x2 counts of one coder pair at every level
    discrepancies.py     the (answer, code) pairs two coders decided differently
    queue.py             the adjudication queue written as XLSX and CSV (cells kept as text)
    adjudications.py     the filled queue read back: decisions and problems
    final_codes.py       agreed + adjudicated + unresolved + stand-in codes, with provenance
"""
