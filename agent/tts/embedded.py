"""An embedded voice service: a local `python -m voice_service serve` child process.

The worker uses this when CHATTERBOX_URL is not set. At scale, workers point at a
pool of services instead, and nothing here runs.

    async with EmbeddedVoiceService() as service:
        tts = TTS(base_url=service.url, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Mapping

import aiohttp

from voice_service.protocol import HEALTH_PATH, READY_PREFIX

from .log import logger


class EmbeddedServiceError(RuntimeError):
    """The embedded voice service did not start."""


class EmbeddedVoiceService:
    """Runs the voice service in a child process bound to 127.0.0.1 on a free port.

    Args:
        env: Extra environment for the child (CHATTERBOX_* settings); the parent's
            environment is inherited.
        startup_timeout: Seconds to wait for the models to load and /healthz to answer.
        python: The interpreter to run; by default this one.
        module: The module run as `python -m <module> serve`; tests put a stand-in here.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 600.0,
        python: str = sys.executable,
        module: str = "voice_service",
    ) -> None:
        self._env = {**os.environ, **(env or {})}
        self._startup_timeout = startup_timeout
        self._python = python
        self._module = module
        self._process: asyncio.subprocess.Process | None = None
        self._stdout_reader: asyncio.Task[None] | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The service's base URL, once started."""
        if self._url is None:
            raise EmbeddedServiceError("the embedded voice service is not started")
        return self._url

    async def start(self) -> str:
        """Start the child, wait until /healthz answers, and return its URL.

        Raises:
            EmbeddedServiceError: the child exited or did not become healthy in time.
        """
        if self._url is not None:
            return self._url
        started = time.monotonic()
        self._process = await asyncio.create_subprocess_exec(
            self._python,
            "-m",
            self._module,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            env=self._env,
            stdout=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        try:
            async with asyncio.timeout(self._startup_timeout):
                url = await self._read_ready_line()
                # The child keeps writing to stdout (chatterbox prints a line per Turbo
                # synthesis); unread, the pipe fills and the child blocks in print().
                self._stdout_reader = asyncio.create_task(
                    self._read_further_output(self._process.stdout), name="embedded voice service stdout"
                )
                await self._wait_healthy(url)
        except BaseException:
            await self.aclose()
            raise
        self._url = url
        logger.info(
            "embedded voice service ready",
            extra={"url": url, "pid": self._process.pid, "seconds": round(time.monotonic() - started, 1)},
        )
        return url

    async def _read_ready_line(self) -> str:
        assert self._process is not None and self._process.stdout is not None
        while True:
            line = await self._process.stdout.readline()
            if not line:
                code = await self._process.wait()
                raise EmbeddedServiceError(f"the embedded voice service exited with code {code}")
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(READY_PREFIX):
                return text.removeprefix(READY_PREFIX)

    @staticmethod
    async def _read_further_output(stdout: asyncio.StreamReader | None) -> None:
        """Read the child's stdout after the ready line until it closes, logging each line at DEBUG."""
        assert stdout is not None
        while True:
            try:
                line = await stdout.readline()
            except ValueError:
                continue  # a line over the stream's limit: the reader has dropped it
            if not line:
                return
            logger.debug(
                "embedded voice service output", extra={"line": line.decode("utf-8", "replace").rstrip()}
            )

    @staticmethod
    async def _wait_healthy(url: str) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{url}{HEALTH_PATH}") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL after 10 seconds."""
        process, self._process, self._url = self._process, None, None
        reader, self._stdout_reader = self._stdout_reader, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                async with asyncio.timeout(10):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        with contextlib.suppress(Exception):
            if process is not None and process.stdout is not None:
                await process.stdout.read()

    async def __aenter__(self) -> EmbeddedVoiceService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def voice_service_url(
    configured: str | None, *, env: Mapping[str, str] | None = None
) -> tuple[str, EmbeddedVoiceService | None]:
    """The voice service to use: `configured` (CHATTERBOX_URL) or a freshly started embedded one.

    Returns:
        The URL and, when one was started, the embedded service the caller must `aclose()`.
    """
    if configured:
        return configured.rstrip("/"), None
    service = EmbeddedVoiceService(env=env)
    return await service.start(), service
