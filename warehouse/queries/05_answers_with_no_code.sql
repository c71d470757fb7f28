-- Which substantive answers received no code at all? Candidates for a missing code or a
-- keyword the codebook lacks. Counted codes only ('unresolved' does not count).
-- Source: staging.answers, coding.final_codes.
select a.school_year, a.question_id, a.answer_id, a.school_id, a.session_number,
       a.answer_text
from staging.answers a
where not a.non_substantive
  and not exists (
      select 1 from coding.final_codes f
      where f.answer_id = a.answer_id
        and f.provenance in ('agreed', 'adjudicated', 'keyword'))
order by a.school_year, a.question_id, a.session_number, a.answer_id;
