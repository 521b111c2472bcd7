"""``python -m d2lcnn.benchmark worker``: one worker process of ``bench --all`` (see :mod:`.runner`)."""

import sys

from .runner import worker

if sys.argv[1:] != ["worker"]:
    sys.exit("usage: python -m d2lcnn.benchmark worker   (started by python -m d2lcnn bench --all)")
worker()
