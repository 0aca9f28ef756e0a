"""Where teacher requests go: an endpoint's URL, key and whether it is the embedded simulator.

Only this description lives here; the factory that may start the simulator
(``distillset.simulator.endpoint.open_endpoint``) sits at the edge (the Dagster resource, the
command line), so no production module imports the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from distillset.teacher.ledger import REMOTE_ORIGIN, SIMULATED_ORIGIN


@dataclass(frozen=True)
class TeacherEndpoint:
    """Where requests go. ``simulated`` marks everything answered as simulator output."""

    base_url: str
    api_key: str | None = field(repr=False)
    simulated: bool
    share_across_endpoints: bool = True
    """Whether answers of other real endpoints serving the same model id may be reused here."""

    @property
    def origin(self) -> str:
        """The ledger origin of this endpoint's answers (see ``distillset.teacher.ledger``)."""
        if self.simulated:
            return SIMULATED_ORIGIN
        return REMOTE_ORIGIN if self.share_across_endpoints else f"{REMOTE_ORIGIN}:{self.public_address}"

    @property
    def description(self) -> str:
        """For log lines: the simulator's loopback URL, or a real endpoint's ``public_address``."""
        return f"the embedded simulator at {self.base_url}" if self.simulated else self.public_address

    @property
    def public_address(self) -> str:
        """Scheme, host and port only (never user info, path or query, which may carry a key)."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}"
