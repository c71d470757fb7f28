"""Marts: longitudinal aggregates of the final codes.

In: coding.final_codes, staging.answers, the codebook. Out: marts.code_frequencies,
code_trends, year_over_year, by_school, by_coach, exemplar_quotes.

    marts.py            counts, rates, trends, coding sources
    year_comparison.py  two school years compared: change, intervals, tests (year_over_year)
    quotes.py           supporting quotes per code
"""
