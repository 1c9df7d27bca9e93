"""Large request messages run on one thread beside the event loop, not on it.

The engine runs inline on the event loop (see ``_Connection._handle``): for a message of a
few items that is cheapest. A message of thousands of items, though, is seconds of engine time
(13,104 Get Attributes in a 1 MiB message: 9.5 s), and inline it made every other client of
the worker wait all that time. So a message with more than
:data:`~kmip_server.engine.batch_limits.LARGE_MESSAGE_ITEMS` batch items is handed to
:class:`LargeMessages`, whose single thread runs it while the loop goes on serving the others;
the answer goes back to the loop, which writes it.

Why one thread and not several, or slicing the work on the loop: parallelism comes from the
worker processes, and the GIL lets one thread of Python run at a time anyway; a second large
message waits for the first, as messages on one loop always did. Slicing the engine's work into
loop callbacks would keep it single-threaded, but every part (decode, each item, the
transaction, encode) would have to become resumable, while the engine is already safe to share
(see kmip_server/engine/dispatcher.py). The thread gives up the GIL every
``sys.getswitchinterval()`` (5 ms) when the loop wants it, which is what keeps the loop's
requests at milliseconds.

Slow messages go the same way (``runs_apart``: a Create Key Pair, whose RSA generation on the
token takes ~0.2 s with the GIL released): the loop serves the others meanwhile.

Order: a connection's messages are answered in the order they came. A connection whose large
message is running holds back its later messages (see ``_Connection._pump``) until it is
answered; other connections are not affected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..engine.batch_limits import is_large, runs_apart  # noqa: F401 - is_large is exported
from ..engine.identity import ClientIdentity

__all__ = ["LargeMessages", "is_large", "runs_apart"]

log = logging.getLogger("strongroom.transport")

MessageHandler = Callable[[bytes, ClientIdentity], bytes]
#: Called on the event loop with the response, or None if the handler raised.
Answer = Callable[[bytes | None], None]


class LargeMessages:
    """Runs ``handler`` for large messages on one thread, answering on the event loop."""

    def __init__(self, handler: MessageHandler) -> None:
        self.handler = handler
        self._executor: ThreadPoolExecutor | None = None  # started at the first large message
        self.running = 0  # submitted and not yet answered

    def submit(self, loop: asyncio.AbstractEventLoop, message: bytes, identity: ClientIdentity, answer: Answer) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strongroom-large")
        self.running += 1
        self._executor.submit(self._run, loop, message, identity, answer)

    def _run(self, loop: asyncio.AbstractEventLoop, message: bytes, identity: ClientIdentity, answer: Answer) -> None:
        response: bytes | None
        try:
            response = self.handler(message, identity)
        except Exception:
            # As on the loop (see _Connection._handle): a bug in the engine, logged with its
            # traceback and never with the request, which may carry key material.
            log.exception("request handler failed on a large message from %s", identity.name)
            response = None
        try:
            loop.call_soon_threadsafe(self._answered, answer, response)
        except RuntimeError:
            # The loop has closed: the worker is exiting after its shutdown grace, and the
            # connection is gone with it.
            log.info("a large message from %s finished after its worker stopped serving", identity.name)

    def _answered(self, answer: Answer, response: bytes | None) -> None:
        self.running -= 1
        answer(response)

    def close(self) -> None:
        """Wait for the message in progress (the engine must not be closed under it)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
