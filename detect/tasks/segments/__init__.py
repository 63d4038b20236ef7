"""``segments``: segment detection. The task (``task``), its targets, losses and
post-processing, and the two-stage cascade of SG-Mamba (``cascade``)."""
from . import task  # noqa: E402,F401  (registers the task)
