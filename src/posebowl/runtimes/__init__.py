"""The environments submissions run in, defined once and built on demand.

    official   the official runtime's packages at the platform's versions (torch, ultralytics,
               tensorflow, OpenVINO 2023.2, ...): what real submissions need (~7 GB)
    slim       the subset posebowl's own examples and tests need, at exactly the same pins

``definition/`` (package data) holds each runtime's ``NAME.in`` and hashed lock ``NAME.txt``
(``slim.txt`` is selected from ``official.txt``, never resolved on its own), the runtime
image's Dockerfile and the import tests run inside the sandbox.

    locks      resolve official (uv, PyPI), select slim from it, check both offline
    build      a runtime's venv from its lock, in the workspace; a failed build keeps the last
    locate     a built runtime, and the one a run uses when none is named
"""

from posebowl.runtimes.locate import Runtime, default_name, locate, runtime_from_venv
from posebowl.runtimes.locks import DEFINITION, NAMES, Spec, spec

__all__ = [
    "DEFINITION",
    "NAMES",
    "Runtime",
    "Spec",
    "default_name",
    "locate",
    "runtime_from_venv",
    "spec",
]
