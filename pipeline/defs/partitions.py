"""School years are partitions; a new year folder in the landing area adds one."""

import dagster as dg

school_years = dg.DynamicPartitionsDefinition(name="school_year")
