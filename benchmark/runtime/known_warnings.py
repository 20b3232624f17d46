"""Warnings from mmseg and its dependencies that say nothing to a user of this harness."""
from __future__ import annotations

import warnings

KNOWN = (
    ".*build_loss.*deprecated",  # mmseg's own models call its deprecated builder
    "pkg_resources is deprecated",  # imported by mmengine/mmcv at import time
)


def silence_known_warnings() -> None:
    """Ignore ``KNOWN`` in this process (the CLI's and each ``--workers`` process)."""
    for message in KNOWN:
        warnings.filterwarnings("ignore", message=message)
