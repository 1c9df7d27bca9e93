"""Both clients, end to end, over real mutual TLS to `strongroom serve` with failover."""

from __future__ import annotations

import asyncio
import ssl

from kmip_client import Client
from kmip_client.aio import AsyncClient
from kmip_client.protocol.spec.enums import State
from kmip_client.transport import Endpoint
from tests.support.server_process import free_port


def test_blocking_client_skips_a_dead_server(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    dead = f"127.0.0.1:{free_port()}"
    with Client([dead, str(endpoints[0])], ssl_context=client_context) as kmip:
        uid = kmip.create("AES", 128, name="over-tls")
        kmip.activate(uid)
        assert len(kmip.get(uid).value) == 16
        assert kmip.get_attributes(uid, ["State"]) == {"State": [State.ACTIVE]}


def test_async_client_over_tls(endpoints: list[Endpoint], client_context: ssl.SSLContext) -> None:
    async def scenario() -> None:
        async with AsyncClient(str(endpoints[0]), ssl_context=client_context) as kmip:
            uids = await asyncio.gather(*(kmip.create("AES", 256, name=f"async-tls-{n}") for n in range(8)))
            keys = await asyncio.gather(*(kmip.get(uid) for uid in uids))
            assert [len(k.value) for k in keys] == [32] * 8
            assert await kmip.locate(name="async-tls-3") == [uids[3]]

    asyncio.run(scenario())
