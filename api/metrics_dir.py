"""The workers' shared metrics directory (prometheus-client's multiprocess mode), set up by ``nocert serve``.

No import of prometheus_client here: it chooses how to keep values when it is first imported, so the
variable must be set before that, in the process that serves with one worker as in those it spawns.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess_dir() -> Path:
    """The workers' metrics directory, emptied: ``PROMETHEUS_MULTIPROC_DIR`` when set, else a new temporary
    one (set for the workers). Files of a previous run would otherwise add their counts to this one's."""
    given = os.environ.get(MULTIPROC_VARIABLE)
    if given:
        directory = Path(given)
        if directory.is_dir():
            for entry in directory.iterdir():
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        directory = Path(tempfile.mkdtemp(prefix="nocert-metrics-"))
        os.environ[MULTIPROC_VARIABLE] = str(directory)
    return directory
