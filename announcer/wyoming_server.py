"""``python -m announcer.wyoming_server``: the Wyoming TTS server on its own (kept as a command name
for configs written before the package layout; the server is ``announcer.integrations.wyoming``)."""

import sys

from .integrations.wyoming.server import main

if __name__ == "__main__":
    sys.exit(main())
