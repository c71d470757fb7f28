"""Reconciliation: two coders' codes -> agreement, discrepancies, adjudication, final codes.

In: human and keyword code applications, coder units, the adjudication file, suggestions (the
stand-in for years nobody coded). Out: coding.agreement, coding.discrepancies (and the queue
workbook), coding.adjudications, coding.final_codes, coding.keyword_quality.

    agreement.py  kappa, alpha, AC1, PABAK with cluster-bootstrap intervals; keyword quality
    reconcile.py  discrepancies, the queue, adjudications, final codes and their provenance
"""
