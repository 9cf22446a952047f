#!/bin/sh
# The platform runs this file from the unzipped submission folder with `sh main.sh`.
set -eu
cd "$(dirname "$0")"
exec python main.py /code_execution/data /code_execution/submission/submission.csv
