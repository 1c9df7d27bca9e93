"""Hold your own key: the HTTP APIs that cloud services call for each use of a key kept here.

Each service is served on the admin listener (kmip_server/admin) when its section of
``strongroom.toml`` enables it, and each call goes through the engine's dispatcher as a KMIP
request of the identity the service's authentication names, so the access policy decides it
and the audit trail records it, as for any KMIP client. SIGHUP re-reads each service's section (reloading.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .reloading import reload_on_sighup

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..transport.https_listener import Route

__all__ = ["service_routes", "xks_only"]


def service_routes(config: ServerConfig, dispatcher: Any) -> dict[str, Route]:
    """The routes of every cloud key service ``config`` enables (none by default)."""
    routes: dict[str, Route] = {}
    if config.xks is not None:
        from .xks_route import xks_routes  # the AWS KMS External Key Store proxy API

        routes.update(xks_routes(config, dispatcher))
    if config.cse is not None:
        from .cse_service import CseService  # the Google Workspace client-side encryption key service

        cse = CseService(config.cse, dispatcher.handle)
        reload_on_sighup(config.data_dir, "cse", cse.staged.offer)
        routes.update(cse.routes())
    if config.dke is not None:
        from .dke_service import DkeService  # Microsoft Purview Double Key Encryption

        dke = DkeService(config.dke, dispatcher.handle)
        reload_on_sighup(config.data_dir, "dke", dke.staged.offer)
        routes.update(dke.routes())
    return routes


def xks_only(routes: dict[str, Route]) -> dict[str, Route]:
    """The XKS API's routes among ``routes`` (those :func:`service_routes` made), for the plain
    HTTP port of ``[xks] insecure_http``: the very routes, so that one :class:`XksService` per
    worker serves both listeners and a SIGHUP reload applies to both."""
    from .xks_route import XksService

    return {
        path: route for path, route in routes.items() if isinstance(getattr(route.answer, "__self__", None), XksService)
    }
