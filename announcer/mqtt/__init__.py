"""MQTT: the broker link and every topic the daemon reads or writes.

Owns: the one paho client and its delivery contract (``link``, with paho's adaptations in
``paho_adapter``), the route table of topics (``topics``), the router from incoming messages to
the intake and the integrations (``router``), what the daemon publishes about itself
(``publisher``: events, replies, status), the ``announcer send`` client (``send``) and the
fleet's commands at the centre (``fleet``: the sites' state, ``announcer fleet``;
``fleet_send``: ``announcer send --site/--all-sites``).
May import: ``core``, ``config``, ``intake``.
"""
