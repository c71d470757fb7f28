-- Which codes grew between the two school years compared? (By default the first and the latest
-- human-coded year, else the first and the latest year.) Codes whose rate per 100
-- substantive answers rose, most convincing first (Benjamini-Hochberg adjusted p-value), with
-- the 95% CI of the change and a flag when the two years were coded by different methods
-- (human coders, a suggester or the keyword coder: marts.year_over_year.comparable / note).
-- Source: marts.year_over_year (level = 'code').
select question_id, framework, dimension, code_id, label, year_a, rate_a, year_b, rate_b,
       diff_per_100, diff_ci_low, diff_ci_high, test, p_value, p_adjusted,
       coalesce(p_adjusted < 0.05, false) as significant_fdr_5pct,
       not comparable as mixed_methods
from marts.year_over_year
where level = 'code' and diff_per_100 > 0
order by p_adjusted nulls last, diff_per_100 desc, question_id, code_id;
