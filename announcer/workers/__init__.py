"""Standalone engine workers: small servers that run an engine in its own Python environment.

A worker must not import the rest of ``announcer`` (it runs in a virtualenv that only
holds its engine's stack, possibly on an older Python); the daemon talks to it over the
Wyoming protocol and may start it as a supervised process (``announcer.engines.supervised``).
May import: nothing of announcer.
"""
