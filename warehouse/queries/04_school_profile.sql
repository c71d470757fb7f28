-- What does one school's feedback look like? Its coded answers per category and code, per
-- school year and question, with rates per 100 of its substantive answers. Exact counts: for
-- the team only (suppress cells under 5 before sharing, see 12_coach_summary_suppressed.sql).
-- Choose the school first:  SET VARIABLE school_id = 'school_1a2b3c4d';
-- (unset: the first school id in alphabetical order, as an example).
with params as (
    select coalesce(getvariable('school_id'),
                    (select min(school_id) from marts.by_school)) as school_id
)
select b.school_id, b.school_year, b.question_id, b.level, b.framework, b.dimension,
       b.code_id, b.label, b.n_answers, b.n_substantive, b.rate_per_100
from marts.by_school b
join params p on b.school_id = p.school_id
where b.level in ('dimension', 'code')
order by b.school_year, b.question_id, b.framework, b.dimension, b.level desc,
         b.n_answers desc, b.code_id;
