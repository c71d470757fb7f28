-- How trustworthy is the keyword coder, code by code, where human codes exist? Precision
-- (its hits the humans also coded) and recall (the humans' codes it found), worst precision
-- first among codes either side applied; the overall row (code_id null) comes last.
-- Source: coding.keyword_quality, coding.codebook_codes.
select k.framework, k.dimension, k.code_id, c.label, k.n_answers,
       k.tp, k.fp, k.fn, k.tp + k.fn as human_support, k.precision, k.recall, k.f1
from coding.keyword_quality k
left join (select distinct framework, code_id, label from coding.codebook_codes) c
       on c.framework = k.framework and c.code_id = k.code_id
where k.tp + k.fp + k.fn > 0
order by k.code_id is null, k.precision asc nulls first, human_support desc, k.code_id;
