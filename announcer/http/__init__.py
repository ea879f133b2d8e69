"""HTTP API and web console (FastAPI + uvicorn), enabled with ``http.enabled``.

* ``app``      — the endpoints (``create_app``) and the OpenAPI document;
* ``history``  — ``GET /history``: the audit trail as JSON or CSV;
* ``models``   — request/response schemas for that document;
* ``security`` — bearer tokens, HS256 JWTs, the IP allow-list, body limits, headers;
* ``connections`` — per connection: the allow-list at accept, a cap per client address, the
  header timeout (a uvicorn protocol subclass);
* ``metrics``  — Prometheus text format from the event stream;
* ``records``  — recent announcements' events and the WAVs ``/tts`` made;
* ``service``  — ``HttpService``: uvicorn in a background thread beside the MQTT side;
* ``static/``  — the console (no CDN: every asset is served from here).

FastAPI and uvicorn are imported only when the HTTP side starts. Announcements and stops go
through the intake like any other front door; the endpoints read the live runtime per request.
May import: ``core``, ``audio``, ``engines``, ``config``, ``spool``, ``intake``, ``playback``,
``schedule`` (the site's time zone).
"""

from __future__ import annotations
