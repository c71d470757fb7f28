"""Marts: longitudinal aggregates of the final codes.

In: coding.final_codes, staging.answers, the codebook. Out: marts.code_frequencies,
code_trends, year_over_year, by_school, by_coach, exemplar_quotes.

    marts.py   counts, rates, trends, year-over-year tests, coding sources
    quotes.py  supporting quotes per code
"""
