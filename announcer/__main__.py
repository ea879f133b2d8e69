"""``python -m announcer``: the command line (``announcer.service.cli``)."""

import sys

from .service.cli import main

sys.exit(main())
