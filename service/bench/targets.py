"""How one request is sent: over HTTP to /v1/superres (gRPC targets plug in the same way)."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from service.bench.loadgen import SendOne


def http_superres(
    client: httpx.AsyncClient, url: str, bodies: Sequence[bytes], params: dict[str, str], content_type: str
) -> SendOne:
    """POST bodies round-robin to `url`/v1/superres; success is a 200 with a non-empty body."""

    async def send(index: int) -> bool:
        body = bodies[index % len(bodies)]
        headers = {"content-type": content_type}
        response = await client.post(f"{url}/v1/superres", params=params, content=body, headers=headers)
        return response.status_code == 200 and len(response.content) > 0

    return send
