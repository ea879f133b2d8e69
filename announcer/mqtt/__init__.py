"""MQTT: the broker link and every topic the daemon reads or writes.

Owns: the one paho client and its delivery contract (``link``, with paho's adaptations in
``paho_adapter``), the route table of topics (``topics``), the router from incoming messages to
the intake and the integrations (``router``), what the daemon publishes about itself
(``publisher``: events, replies, status) and the ``announcer send`` client (``send``).
May import: ``core``, ``config``, ``intake``.
"""
