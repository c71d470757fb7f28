-- Who coded each school year? Final-code rows per provenance, and whether the year rests on
-- human coding or on a machine standing in for the coders: the trained or zero-shot
-- suggester (see coding.suggestion_quality for its agreement with humans) or the keyword
-- coder. A machine-coded year's counts are not comparable one to one with human-coded years.
-- Same rule as marts.coding_sources(); suggestion row counts are in coding.final_codes
-- (provenance 'trained_suggestion', 'zero_shot_suggestion').
-- Source: coding.final_codes.
with kinds as (
    select school_year,
           count(*) filter (where provenance = 'agreed') as n_agreed,
           count(*) filter (where provenance = 'adjudicated') as n_adjudicated,
           count(*) filter (where provenance = 'unresolved') as n_unresolved,
           count(*) filter (where provenance = 'keyword') as n_keyword,
           count(*) filter (where provenance = 'trained_suggestion') as n_trained,
           count(*) filter (where provenance = 'zero_shot_suggestion') as n_zero_shot
    from coding.final_codes
    group by school_year
)
select school_year, n_agreed, n_adjudicated, n_unresolved, n_keyword,
       case when (n_agreed + n_adjudicated + n_unresolved > 0)::int + (n_keyword > 0)::int
                 + (n_trained > 0)::int + (n_zero_shot > 0)::int > 1 then 'mixed'
            when n_keyword > 0 then 'keyword'
            when n_trained > 0 then 'trained_suggestion'
            when n_zero_shot > 0 then 'zero_shot_suggestion'
            else 'human' end as coding_source
from kinds
order by school_year;
