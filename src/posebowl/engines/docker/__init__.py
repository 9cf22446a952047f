"""The ``docker`` engine: the same run in a container of a runtime image.

argv     the ``docker run`` command line, the run's user and what each limit becomes with a
         daemon (pure functions; :class:`DaemonInfo`)
daemon   the ``docker`` command: finding it, short calls, whether a daemon answers
image    the runtime image: built offline and hash-checked, pulled, checked before a run
engine   :class:`DockerEngine`: one container per run, supervised like a bwrap run
"""

from posebowl.engines.docker.argv import DaemonInfo
from posebowl.engines.docker.engine import DockerEngine
from posebowl.engines.docker.image import DEFAULT_IMAGE, IMAGE_ENV, IMAGE_REPO

__all__ = ["DEFAULT_IMAGE", "IMAGE_ENV", "IMAGE_REPO", "DaemonInfo", "DockerEngine"]
