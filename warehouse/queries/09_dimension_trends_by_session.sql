-- How did each category develop across the coaching sessions of a year? The share of
-- substantive answers with any code of the category, session by session.
-- Source: marts.code_trends (level = 'dimension').
select school_year, session_number, question_id, framework, dimension,
       n_answers, n_substantive, rate_per_100
from marts.code_trends
where level = 'dimension'
order by question_id, framework, dimension, school_year, session_number;
