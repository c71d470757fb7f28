-- What did respondents actually say for one code? The exemplar quotes (redacted text) with the
-- reason each was chosen, per question.
-- Choose the code first:  SET VARIABLE code_id = 'time_allocated';  (unset: coaching_support)
-- Source: marts.exemplar_quotes.
select question_id, framework, dimension, code_id, label, rank, school_year, session_number,
       quote, provenance, reason
from marts.exemplar_quotes
where code_id = coalesce(getvariable('code_id'), 'coaching_support')
order by question_id, rank;
