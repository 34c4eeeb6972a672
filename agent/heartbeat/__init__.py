"""The heartbeat to the control plane (no HTTP server code here; the client is the standard library's http.client).

``Heartbeat`` is the loop, ``agent.heartbeat.payload`` the wire format.
"""

from agent.heartbeat.client import Backoff, BeatOutcome, Heartbeat, from_config

__all__ = ["Backoff", "BeatOutcome", "Heartbeat", "from_config"]
