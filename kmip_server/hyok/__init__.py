"""Hold your own key: the HTTP APIs that cloud services call for each use of a key kept here.

Each service is served on the admin listener (kmip_server/admin) when its section of
``strongroom.toml`` enables it, and each call goes through the engine's dispatcher as a KMIP
request of the identity the service's authentication names, so the access policy decides it
and the audit trail records it, as for any KMIP client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..transport.https_listener import Route

__all__ = ["service_routes"]


def service_routes(config: ServerConfig, dispatcher: Any) -> dict[str, Route]:
    """The routes of every cloud key service ``config`` enables (none by default)."""
    routes: dict[str, Route] = {}
    if config.xks is not None:
        from .xks_route import xks_routes  # the AWS KMS External Key Store proxy API

        routes.update(xks_routes(config, dispatcher))
    if config.cse is not None:
        from .cse_service import CseService  # the Google Workspace client-side encryption key service

        routes.update(CseService(config.cse, dispatcher.handle).routes())
    if config.dke is not None:
        from .dke_service import DkeService  # Microsoft Purview Double Key Encryption

        routes.update(DkeService(config.dke, dispatcher.handle).routes())
    return routes
