"""The official Python SDK client (mcp 2.x) against a running gatehouse: era negotiation
(`auto` probes server/discover, or pinned to 2026-07-28, or forced `legacy`), list tools, call
one, with the token in GATEHOUSE_TOKEN. Usage: python py_client.py URL MODE  (exit 0 when every
check holds)."""

import asyncio
import os
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

EXPECTED = {"auto": "2026-07-28", "2026-07-28": "2026-07-28", "legacy": "2025-11-25"}


async def main(url: str, mode: str) -> None:
    token = os.environ.get("GATEHOUSE_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(transport, mode=mode) as client:
            version = client.protocol_version
            if version != EXPECTED[mode]:
                sys.exit(f"FAIL (Python SDK, {mode}): negotiated {version}, expected {EXPECTED[mode]}")
            tools = await client.list_tools()
            names = [t.name for t in tools.tools]
            if "greet_user" not in names:
                sys.exit(f"FAIL (Python SDK, {mode}): greet_user not listed: {names}")
            result = await client.call_tool("greet_user", {"name": "Ada"})
            text = result.content[0].text if result.content else ""
            if result.is_error or "Ada" not in text:
                sys.exit(f"FAIL (Python SDK, {mode}): unexpected result {result}")
            print(f"ok: Python SDK ({version}, mode {mode}) listed {len(names)} tools and called greet_user: {text}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
