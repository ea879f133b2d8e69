"""``python -m announcer``: the command line (``announcer.service.cli``)."""

from .service.cli import console

console()
