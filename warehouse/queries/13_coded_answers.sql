-- What was each answer coded as, who decided, and on what evidence? One row per answer
-- (redacted text), its final codes as labels with the category of each, how each was decided
-- (agreed by both coders, adjudicated, or a machine standing in for the coders in a year
-- nobody coded by hand) and the evidence for each (the keyword coder's matched text, else
-- the suggester's sentence).
-- Lists in `codes`, `categories`, `provenance`, `decided_by` are aligned ('; ' between codes);
-- `evidence` is 'Label: "text"' per code that has some (' | ' between codes). `undecided`
-- lists the coders' disagreements on the answer still waiting for an adjudicator.
-- The same rows are reports/coded_answers.xlsx and .csv, in school-year, session, question order
-- (each session one run of rows: a refresh renders only the sessions whose rows changed).
-- Source: staging.answers, coding.final_codes, coding.codebook_codes,
-- coding.keyword_applications, coding.suggestions.
with labels as (
    select distinct framework, code_id, label,
           coalesce(dimension_label, dimension) as category
    from coding.codebook_codes
),
keyword as (
    select answer_id, framework, code_id,
           array_to_string(list_distinct(
               json_extract_string(evidence, '$[*].matched_text')), ' / ') as matched
    from coding.keyword_applications
),
suggested as (
    select answer_id, framework, code_id,
           arg_max(evidence_text, (source = 'trained')::int * 10 + probability) as sentence
    from coding.suggestions
    group by all
),
codes as (
    select f.answer_id, f.framework, f.dimension, f.code_id, f.provenance,
           coalesce(l.label, f.code_id) as label,
           coalesce(l.category, f.dimension) as category,
           case f.provenance when 'agreed' then 'agreed'
                             when 'adjudicated' then 'adjudicated'
                             when 'unresolved' then 'unresolved'
                             else 'machine: ' || replace(f.provenance, '_', ' ') end as how,
           coalesce(f.decided_by, '') as decided_by,
           nullif(case when f.provenance like '%suggestion'
                       then coalesce(s.sentence, k.matched)
                       else coalesce(k.matched, s.sentence) end, '') as evidence
    from coding.final_codes f
    left join labels l on l.framework = f.framework and l.code_id = f.code_id
    left join keyword k
           on k.answer_id = f.answer_id and k.framework = f.framework and k.code_id = f.code_id
    left join suggested s
           on s.answer_id = f.answer_id and s.framework = f.framework and s.code_id = f.code_id
),
-- each answer's codes gathered once, in one order, then split into the aligned lists (one
-- ordered aggregate instead of seven: a million answers in a second, not ten)
gathered as (
    select answer_id,
           list({'label': label, 'category': category, 'how': how, 'decided_by': decided_by,
                 'evidence': evidence, 'decided': provenance <> 'unresolved'}
                order by framework, dimension, label) as items
    from codes
    group by answer_id
),
per_answer as (
    select answer_id,
           list_filter(items, lambda x: x.decided) as decided,
           list_filter(items, lambda x: not x.decided) as undecided
    from gathered
)
select a.answer_id, a.school_year, a.session_number, a.school_id, a.role, a.question_id,
       case a.question_id when 'worked' then 'What worked from today''s coaching session?'
                          when 'improve' then 'In what ways can we improve today''s coaching session?'
                          else a.question_id end as question,
       a.answer_text, a.non_substantive,
       coalesce(len(p.decided), 0) as n_codes,
       coalesce(array_to_string(list_transform(p.decided, lambda x: x.label), '; '), '') as codes,
       coalesce(array_to_string(list_transform(p.decided, lambda x: x.category), '; '), '')
           as categories,
       coalesce(array_to_string(list_transform(p.decided, lambda x: x.how), '; '), '') as provenance,
       coalesce(array_to_string(list_transform(p.decided, lambda x: x.decided_by), '; '), '')
           as decided_by,
       coalesce(array_to_string(list_transform(
           list_filter(p.decided, lambda x: x.evidence is not null),
           lambda x: x.label || ': "' || x.evidence || '"'), ' | '), '') as evidence,
       coalesce(array_to_string(list_transform(p.undecided, lambda x: x.label), '; '), '')
           as undecided
from staging.answers a
left join per_answer p on p.answer_id = a.answer_id
order by a.school_year, a.session_number nulls last,
         case a.question_id when 'worked' then 0 else 1 end, a.answer_id;
