"""Running a submission as the platform does, top-down (read :mod:`posebowl.run.pipeline` first).

    intake     open the zip safely into the working directory (or refuse it)
    dataview   what the sandbox sees at /code_execution/data: images/ + submission_format.csv
    log        log.txt, and the in-sandbox entrypoint's protocol (entrypoint.sh)
    checks     the platform's checks on submission.csv, the score against the labels
    verdict    the status, its sentence and result.json
    pipeline   run_submission (the whole run) and run_command (shell, runtime test)

The engine that executes the prepared run lives in :mod:`posebowl.engines`.
"""

from posebowl.run.pipeline import run_command, run_submission
from posebowl.run.verdict import LOG_NAME, RESULT_NAME, RunSetup, Verdict

__all__ = ["LOG_NAME", "RESULT_NAME", "RunSetup", "Verdict", "run_command", "run_submission"]
