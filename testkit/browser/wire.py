"""What a page received over the network, per request, from Chromium's own accounting.

`Network.loadingFinished.encodedDataLength` (DevTools protocol) is every byte that
came off the socket for a response, headers and compressed body, and 0 for an
answer from the browser's cache: bytes on the wire, not bytes after decoding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Page


@dataclass
class Received:
    """One finished response."""

    url: str
    status: int
    headers: dict[str, str]
    wire_bytes: int
    from_cache: bool


@dataclass
class WireLog:
    """Every response a page finished receiving, in order."""

    received: list[Received] = field(default_factory=list)
    _pending: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    async def attach(cls, page: Page) -> WireLog:
        """Start recording `page`'s network (before it navigates)."""
        log = cls()
        cdp = await page.context.new_cdp_session(page)
        cdp.on("Network.responseReceived", log._response)
        cdp.on("Network.loadingFinished", log._finished)
        await cdp.send("Network.enable")
        return log

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        self._pending[event["requestId"]] = {
            "url": response["url"],
            "status": response["status"],
            "headers": {k.lower(): v for k, v in response.get("headers", {}).items()},
            "from_cache": bool(response.get("fromDiskCache") or response.get("fromPrefetchCache"))
            or response.get("fromServiceWorker", False),
        }

    def _finished(self, event: dict[str, Any]) -> None:
        seen = self._pending.pop(event["requestId"], None)
        if seen is not None:
            self.received.append(Received(wire_bytes=int(event["encodedDataLength"]), **seen))

    def mark(self) -> int:
        """A point in the log, for `since`."""
        return len(self.received)

    def since(self, mark: int = 0) -> list[Received]:
        """The responses finished after `mark`."""
        return self.received[mark:]

    def to(self, prefix: str, mark: int = 0) -> list[Received]:
        """The responses from URLs starting with `prefix`, finished after `mark`."""
        return [r for r in self.since(mark) if r.url.startswith(prefix)]


def total(responses: list[Received]) -> int:
    """Bytes on the wire of `responses`."""
    return sum(r.wire_bytes for r in responses)


__all__ = ["Received", "WireLog", "total"]
