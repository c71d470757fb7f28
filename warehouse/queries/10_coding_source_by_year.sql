-- Who coded each school year? Final-code rows per provenance, and whether the year rests on
-- human coding or on the keyword coder standing in (then its counts are not comparable one to
-- one with human-coded years).
-- Source: coding.final_codes.
select school_year,
       count(*) filter (where provenance = 'agreed') as n_agreed,
       count(*) filter (where provenance = 'adjudicated') as n_adjudicated,
       count(*) filter (where provenance = 'unresolved') as n_unresolved,
       count(*) filter (where provenance = 'keyword') as n_keyword,
       case when count(*) filter (where provenance = 'keyword') = 0 then 'human'
            when count(*) filter (where provenance <> 'keyword') = 0 then 'keyword'
            else 'mixed' end as coding_source
from coding.final_codes
group by school_year
order by school_year;
