-- How well did the two human coders agree on each code (before reconciliation)? Lowest
-- Krippendorff's alpha first: the codes whose definitions most need a conversation.
-- Source: coding.agreement (level = 'code') and coding.codebook_codes for labels.
select a.coder_a, a.coder_b, a.framework, a.dimension, a.code_id, c.label,
       a.n_units, a.prevalence, a.percent_agreement, a.cohen_kappa, a.krippendorff_alpha,
       a.gwet_ac1, a.pabak
from coding.agreement a
left join (select distinct framework, code_id, label from coding.codebook_codes) c
       on c.framework = a.framework and c.code_id = a.code_id
where a.level = 'code'
order by a.krippendorff_alpha asc nulls last, a.framework, a.code_id;
