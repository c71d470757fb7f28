"""The console logger of `survey-pipeline run`: Dagster's format, without stack traces.

Dagster's default console logger prints a failed step's whole trace. For the command line a
failure is one line: the step and the innermost error's class and first line (e.g.
`step raw__survey_rows failed: MappingError: mapping.yaml: unknown key ...`). The trace stays
in the run's event log (the UI, `dagster_home/`).
"""

import logging
import re
import sys

import dagster as dg
from dagster._utils.log import default_date_format_string, default_format_string


def root_cause(error) -> str:
    """`Class: first line` of the innermost error of a SerializableErrorInfo chain."""
    while error.cause is not None:
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    text = lines[0] if lines else ""
    if not error.cls_name:
        return text
    # the message may start with the class, qualified or not: say it once, unqualified
    text = re.sub(rf"^(?:[\w.]+\.)?{re.escape(error.cls_name)}:\s*", "", text)
    return f"{error.cls_name}: {text}"


class BriefFormatter(logging.Formatter):
    """Step failures as one line; every other record as Dagster formats it."""

    def format(self, record: logging.LogRecord) -> str:
        event = (getattr(record, "dagster_meta", None) or {}).get("dagster_event")
        if event is not None and event.is_step_failure and event.step_failure_data:
            head = record.getMessage().splitlines()[0]
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{head} {root_cause(event.step_failure_data.error)}"
            record.args = ()
        elif event is not None and event.is_run_failure or "\nStack Trace:" in record.getMessage():
            record = logging.makeLogRecord(record.__dict__)
            record.msg = record.getMessage().splitlines()[0]
            record.args = ()
        return super().format(record)


@dg.logger(config_schema={"log_level": dg.Field(str, default_value="DEBUG"),
                          "name": dg.Field(str, default_value="dagster")},
           description="Dagster's console format; a failed step in one line, no trace")
def brief_console_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    level = init_context.logger_config["log_level"].upper()
    logger = logging.Logger(init_context.logger_config["name"], level=level)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BriefFormatter(default_format_string(), default_date_format_string()))
    logger.addHandler(handler)
    return logger
