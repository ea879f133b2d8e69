"""An active/standby pair: two daemons for one site, one of them playing (docs/fleet.md).

``lease``: who leads, decided from the broker's retained lease and each member's last will (pure);
``member``: the daemon's part (the leadership thread, the start gate, the front doors' scheduling,
the ``pair`` status); ``shadow``: what a member keeps for the announcements the other one plays.
"""
