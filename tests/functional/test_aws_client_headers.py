"""What every AWS request of the adapters carries (adapters.aws), seen by a server of our own."""

from __future__ import annotations

import asyncio

from adapters.aws import USER_AGENT, StaticCredentials, aws_client


async def test_requests_name_hemisphere_as_their_user_agent_and_are_signed() -> None:
    heads: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n")
        writer.write(b"Content-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    endpoint = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        credentials = StaticCredentials("hemisphere-local", "hemisphere-local")
        async with aws_client("dynamodb", endpoint, "us-east-1", credentials) as client:
            await client.list_tables()
            await client.list_tables()
    finally:
        server.close()
        await server.wait_closed()
    for head in heads:
        headers = dict(
            line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
        )
        # Ours, made once, not botocore's default rebuilt for every request.
        assert headers["User-Agent"].startswith(USER_AGENT + " botocore/")
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=hemisphere-local/")
    assert len(heads) == 2
