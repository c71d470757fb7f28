-- Which coder disagreements are still waiting for a decision? Every (answer, code) whose final
-- code is 'unresolved', with both coders' decisions and the answer, oldest year first.
-- These never count in the marts until adjudicated.
-- Source: coding.final_codes, coding.discrepancies, staging.answers, coding.codebook_codes.
select f.school_year, f.question_id, f.answer_id, f.framework, f.dimension, f.code_id,
       c.label, d.coder_a, d.decision_a, d.coder_b, d.decision_b, a.answer_text
from coding.final_codes f
join staging.answers a on a.answer_id = f.answer_id
left join coding.discrepancies d
       on d.answer_id = f.answer_id and d.framework = f.framework and d.code_id = f.code_id
left join (select distinct framework, code_id, label from coding.codebook_codes) c
       on c.framework = f.framework and c.code_id = f.code_id
where f.provenance = 'unresolved'
order by f.school_year, f.question_id, f.answer_id, f.code_id;
