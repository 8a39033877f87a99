"""`python -m dev [--host H] [--port P]`: the whole product on this machine, for `make dev`.

It starts, in this order, each saying in one line where it listens:

1. LiveKit, when `LIVEKIT_URL` names this machine and nothing answers there: the
   livekit-server `make livekit` provides, with a config generated in `.tools/dev/` (the
   settings' key pair, the webhook pointed at the token server, the URL's port, media and
   STUN on this machine only). A LiveKit already answering there is left alone; a
   remote one is only named.
2. The token server (`python -m token_server`), awaited until `/healthz` answers.
3. The agent worker (`python -m agent dev`), reporting to that token server.

Each runs in a process group of its own, so Ctrl-C reaches only this launcher, which
stops them in the reverse order (SIGTERM, then SIGKILL to what is left of the group; a
second Ctrl-C kills at once). If one of them exits, the others are stopped and one
line says which.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from agent.settings import Settings as WorkerSettings
from token_server.settings import Settings as TokenServerSettings

from .addresses import local_address, node_ip
from .livekit_server import REPO, LiveKitConfig, LiveKitServer, LiveKitServerMissing, find_binary, free_port
from .livekit_server import answers as livekit_answers
from .settings import Settings

WORKDIR = REPO / ".tools" / "dev"
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
TOKEN_SERVER_START_SECONDS = 60.0
STOP_SECONDS = 20.0
# How long what a stopped service left in its group may take to exit on its own.
ORPHAN_SECONDS = 3.0
# livekit-server's own defaults for media (ICE over TCP and UDP) and its embedded TURN/STUN.
RTC_TCP_PORT, RTC_UDP_PORT, TURN_UDP_PORT = 7881, 7882, 3478


class ServiceFailed(Exception):
    """A service could not start, or exited; the message says which and why, in one line."""


class Signals:
    """Counts SIGINT, SIGTERM and SIGHUP, so waits can look, instead of raising where they land."""

    def __init__(self) -> None:
        self.count = 0
        for sig in HANDLED_SIGNALS:
            signal.signal(sig, self._received)

    def _received(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1


@dataclass
class Service:
    """One child process, in a process group of its own."""

    name: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, name: str, argv: list[str], env: dict[str, str]) -> Service:
        """Start `argv`; it shares our stdout and stderr but not our terminal's signals."""
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and modules
            argv, cwd=REPO, env=env, stdin=subprocess.DEVNULL, process_group=0
        )
        return cls(name, process)

    def exit_code(self) -> int | None:
        """Its exit code, or None while it runs."""
        return self.process.poll()

    def stop(self, timeout: float, force: Callable[[], bool]) -> None:
        """SIGTERM; after `timeout` seconds, or once `force()`, SIGKILL to its group.

        What it leaves behind in its group (the worker's job processes, its voice
        service) gets a moment to exit after it, then is killed too.
        """
        deadline = time.monotonic() + timeout
        if self.process.poll() is None:
            self.process.terminate()
        while not force() and time.monotonic() < deadline:
            if self.process.poll() is not None and not self._group_alive():
                break
            time.sleep(0.05)
            if self.process.poll() is not None:
                deadline = min(deadline, time.monotonic() + ORPHAN_SECONDS)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True


def http_url(ws_url: str) -> str:
    """The http(s) URL of a ws(s) one: where LiveKit's server API answers."""
    parts = urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urlunsplit(parts._replace(scheme=scheme))


def reachable_host(host: str) -> str:
    """The host a client on this machine uses for a server listening on `host`."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)  # noqa: S104 - a mapping


def url_of(host: str, port: int) -> str:
    """`http://host:port`, bracketing an IPv6 host."""
    host = reachable_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def port_or_free(preferred: int, kind: int) -> int:
    """`preferred` if no one holds it on any interface, else a free port of that kind."""
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind(("", preferred))  # every interface: the server binds its media ports there
            return preferred
        except OSError:
            pass
    return free_port("", kind)


def display(path: Path) -> str:
    """`path` relative to the repository when it is inside it."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(REPO))
    return str(path)


def last_message(log: str) -> str:
    """The last line of a Go program's log that is a message, not a stack trace's frame."""
    for line in reversed(log.splitlines()):
        # frames are a function name alone, or a tab-indented file:line
        if line.strip() and not line[0].isspace() and " " in line:
            return line.strip()
    return "no output"


def livekit_config(
    settings: TokenServerSettings, dev: Settings, *, address: str, port: int, webhook_url: str
) -> LiveKitConfig:
    """The config of a LiveKit listening at `address`:`port` (LIVEKIT_URL's) for make dev.

    The settings' key pair, webhooks to the token server, media and the clients' STUN
    server (the embedded TURN server) on this machine's `node_ip()`, and livekit-server's
    default media ports where they are free.
    """
    return LiveKitConfig(
        node_ip=dev.livekit_node_ip or node_ip(address),
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        webhook_urls=[webhook_url],
        bind_address=address,
        port=port,
        tcp_port=port_or_free(RTC_TCP_PORT, socket.SOCK_STREAM),
        udp_port=port_or_free(RTC_UDP_PORT, socket.SOCK_DGRAM),
        turn_udp_port=port_or_free(TURN_UDP_PORT, socket.SOCK_DGRAM),
    )


def provide_livekit(
    settings: TokenServerSettings, dev: Settings, *, webhook_url: str, workdir: Path
) -> LiveKitServer | None:
    """Start LiveKit when `LIVEKIT_URL` is on this machine and nothing answers there; say where it is.

    Returns the server started here (its config and log in `workdir`), or None when it
    runs elsewhere or already runs.

    Raises:
        ServiceFailed: it should run here but cannot be started.
    """
    url = settings.livekit_url
    parts = urlsplit(url)
    address = local_address(parts.hostname or "")
    if address is None:
        print(f"LiveKit at {url} (not on this machine: make dev starts none)", flush=True)
        return None
    if livekit_answers(settings.livekit_api_url or http_url(url)):
        print(
            f"LiveKit on {url} (already running, left alone; its webhook belongs at {webhook_url})",
            flush=True,
        )
        return None
    if parts.scheme != "ws":
        raise ServiceFailed(
            f"nothing answers at LIVEKIT_URL {url}, and make dev starts only a plain ws:// LiveKit: "
            "use ws://, or start that server yourself"
        )
    port = parts.port or 80
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET) as probe:
        try:
            probe.bind((address, port))
        except OSError:
            raise ServiceFailed(
                f"port {port} of LIVEKIT_URL {url} is taken by something that is not a LiveKit server"
            ) from None
    try:
        binary = find_binary()
    except LiveKitServerMissing as exc:
        raise ServiceFailed(str(exc)) from None
    config = livekit_config(settings, dev, address=address, port=port, webhook_url=webhook_url)
    server = LiveKitServer(config, workdir, binary=binary)
    server.log_path.unlink(missing_ok=True)  # this run's log only
    try:
        server.start()
    except RuntimeError:
        raise ServiceFailed(
            f"livekit-server did not start ({last_message(server.log_tail())}); "
            f"its log: {display(server.log_path)}"
        ) from None
    print(
        f"LiveKit on {url} (started here; media and STUN on {config.node_ip}; log: {display(server.log_path)})",
        flush=True,
    )
    return server


def http_ok(url: str) -> bool:
    """Whether `url` answers 200 within a second."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:  # noqa: S310 - our own URL
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_healthy(service: Service, url: str, signals: Signals) -> None:
    """Wait until `url` answers 200.

    Raises:
        ServiceFailed: the service exited or did not answer in time.
    """
    deadline = time.monotonic() + TOKEN_SERVER_START_SECONDS
    while signals.count == 0:
        code = service.exit_code()
        if code is not None:
            raise ServiceFailed(
                f"the {service.name} exited at start with code {code} (its output above says why)"
            )
        if http_ok(url):
            return
        if time.monotonic() > deadline:
            raise ServiceFailed(
                f"the {service.name} did not answer {url} in {TOKEN_SERVER_START_SECONDS:.0f} s"
            )
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    """Start LiveKit (when needed), the token server and the worker; stop them all on a signal."""
    parser = argparse.ArgumentParser(
        prog="python -m dev", description="Run LiveKit (when needed), the token server and the worker."
    )
    parser.add_argument("--host", default="127.0.0.1", help="the token server's address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="the token server's port (default 8080)")
    parser.add_argument(
        "--workdir", type=Path, default=WORKDIR, help=f"LiveKit's config and log (default {display(WORKDIR)})"
    )
    args = parser.parse_args(argv)
    signals = Signals()
    try:
        dev = Settings()
        token_server_settings = TokenServerSettings()
        worker_settings = WorkerSettings()
    except ValidationError as exc:
        print(f"error: invalid settings: {exc}", file=sys.stderr)
        return 2

    token_server_url = url_of(args.host, args.port)
    level = dev.log_level.upper()
    livekit: LiveKitServer | None = None
    services: list[Service] = []
    code = 0
    try:
        livekit = provide_livekit(
            token_server_settings,
            dev,
            webhook_url=f"{token_server_url}/livekit/webhook",
            workdir=args.workdir,
        )
        python = sys.executable
        host_port = ["--host", args.host, "--port", str(args.port)]
        token_server_argv = [python, "-m", "token_server", *host_port, "--log-level", level]
        token_server = Service.start("token server", token_server_argv, dict(os.environ))
        services.append(token_server)
        wait_until_healthy(token_server, f"{token_server_url}/healthz", signals)
        if signals.count == 0:
            worker_env = {**os.environ, "TOKEN_SERVER_URL": token_server_url}
            if "load_threshold" not in worker_settings.model_fields_set:
                # A laptop's busy CPU must not turn its own sessions away (LiveKit drops a
                # job no worker takes): unless LOAD_THRESHOLD says otherwise, count
                # sessions only.
                worker_env["LOAD_THRESHOLD"] = "1"
            # --no-reload: livekit-agents 1.8 removed in-process reload and warns when asked for it.
            worker_argv = [python, "-m", "agent", "dev", "--log-level", level, "--no-reload"]
            services.append(Service.start("worker", worker_argv, worker_env))
        while signals.count == 0:
            for service in services:
                exited = service.exit_code()
                if exited is not None:
                    raise ServiceFailed(f"the {service.name} exited with code {exited}; stopping the rest")
            if livekit is not None and livekit.process is not None and livekit.process.poll() is not None:
                raise ServiceFailed(
                    f"LiveKit exited with code {livekit.process.returncode}; its log: {display(livekit.log_path)}"
                )
            time.sleep(0.2)
    except ServiceFailed as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        stop_all(services, livekit, signals)
    return code


def stop_all(services: list[Service], livekit: LiveKitServer | None, signals: Signals) -> None:
    """Stop the services in the reverse order they started, then LiveKit."""
    names = [s.name for s in reversed(services) if s.exit_code() is None]
    if livekit is not None:
        names.append("LiveKit")
    if names:
        print(f"stopping: {', '.join(names)}", flush=True)
    signalled = signals.count

    def force() -> bool:
        return signals.count > signalled  # another Ctrl-C while stopping

    for service in reversed(services):
        service.stop(STOP_SECONDS, force)
    if livekit is not None:
        if force():
            livekit.kill()
        else:
            livekit.stop()


if __name__ == "__main__":
    sys.exit(main())
