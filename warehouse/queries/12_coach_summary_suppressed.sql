-- Per external coach, how many answers touched each framework? Shareable version: counts of
-- 1 to 4 are shown as '<5' and their rates blanked, as in the findings report.
-- Source: marts.by_coach (level = 'framework').
select coach_id, school_year, question_id, framework,
       case when n_answers between 1 and 4 then '<5' else cast(n_answers as varchar) end
           as coded_answers,
       case when n_substantive between 1 and 4 then '<5'
            else cast(n_substantive as varchar) end as substantive_answers,
       case when n_answers between 1 and 4 or n_substantive between 1 and 4 then null
            else round(rate_per_100, 1) end as rate_per_100
from marts.by_coach
where level = 'framework'
order by coach_id, school_year, question_id, framework;
