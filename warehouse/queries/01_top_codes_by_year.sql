-- Which codes were applied most often, per school year and question? The ten most frequent
-- codes of each year x question, with their rate per 100 substantive answers and whether the
-- year's codes are human (agreed/adjudicated) or the keyword coder standing in.
-- Source: marts.code_frequencies (level = 'code').
select school_year, question_id, rank, framework, dimension, code_id, label,
       n_answers, rate_per_100, n_schools, coding_source
from (
    select *,
           row_number() over (partition by school_year, question_id
                              order by n_answers desc, code_id) as rank
    from marts.code_frequencies
    where level = 'code' and n_answers > 0
)
where rank <= 10
order by school_year, question_id, rank;
