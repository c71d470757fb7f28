-- Why were rows kept out of the analysis? Quarantined rows per school year, stage and reason,
-- with how many export files each reason touched. Reads the raw schema: data stewards only.
-- Source: raw.quarantine.
select school_year, stage, level, reason,
       count(*) as n_rows, count(distinct file_name) as n_files,
       min(file_name) as example_file
from raw.quarantine
group by school_year, stage, level, reason
order by school_year, n_rows desc, reason;
