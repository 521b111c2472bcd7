"""``python -m d2lcnn ...``: see ``d2lcnn.commands``."""

from .commands import main

raise SystemExit(main())
