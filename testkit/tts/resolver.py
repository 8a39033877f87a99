"""A DNS resolver that answers made-up names from a table, for the SSRF tests."""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult


class TableResolver(AbstractResolver):
    """Resolves names in `table` (name -> list of IP strings); other names fail."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.asked.append(host)
        if host not in self.table:
            raise OSError(f"no such host: {host}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self.table[host]
        ]

    async def close(self) -> None:
        return None
