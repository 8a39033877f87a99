"""A local livekit-server: its generated config, and the process, for `make dev` and the e2e tests.

The binary comes from `make livekit` (the one on PATH, else one built from the pinned
Go module into `.tools/`), named by the `LIVEKIT_SERVER` variable that make exports.
The config keeps every address on this machine: the node IP is given (never looked
up), and clients are handed the server's own embedded STUN/TURN, because with no
`rtc.stun_servers` the server hands them public STUN servers.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BINARY_ENV = "LIVEKIT_SERVER"
BUILT_BINARY_GLOB = ".tools/livekit-server-*/livekit-server"


class LiveKitServerMissing(RuntimeError):
    """No livekit-server binary: neither `LIVEKIT_SERVER`, PATH nor `.tools/` has one."""


def find_binary() -> str:
    """The livekit-server to run: `$LIVEKIT_SERVER`, then PATH, then the one `make livekit` built.

    Raises:
        LiveKitServerMissing: there is none; the message says what to run.
    """
    named = os.environ.get(BINARY_ENV)
    if named and Path(named).is_file():
        return named
    on_path = shutil.which("livekit-server")
    if on_path:
        return on_path
    built = sorted(REPO.glob(BUILT_BINARY_GLOB))
    if built:
        return str(built[-1])
    raise LiveKitServerMissing(
        "livekit-server is missing: run `make livekit` (it needs Go, or a livekit-server on PATH)"
    )


def free_port(host: str, kind: int = socket.SOCK_STREAM) -> int:
    """A port nothing on `host` listens on now (TCP, or UDP with `socket.SOCK_DGRAM`)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class LiveKitConfig:
    """What a local server needs: where it listens, its one key pair and where webhooks go."""

    node_ip: str
    api_key: str
    api_secret: str
    webhook_urls: list[str] = field(default_factory=list)
    bind_address: str | None = None  # default: node_ip
    port: int = 7880
    tcp_port: int = 7881
    udp_port: int = 7882
    turn_udp_port: int = 3478
    log_level: str = "warn"

    @classmethod
    def with_free_ports(cls, node_ip: str, **values: Any) -> LiveKitConfig:
        """A config whose every port is free on `node_ip` now."""
        return cls(
            node_ip=node_ip,
            port=free_port(node_ip),
            tcp_port=free_port(node_ip),
            udp_port=free_port(node_ip, socket.SOCK_DGRAM),
            turn_udp_port=free_port(node_ip, socket.SOCK_DGRAM),
            **values,
        )

    @property
    def _listen_host(self) -> str:
        host = self.bind_address or self.node_ip
        return f"[{host}]" if ":" in host else host

    @property
    def ws_url(self) -> str:
        """The signalling URL clients and the worker connect to (where it listens)."""
        return f"ws://{self._listen_host}:{self.port}"

    @property
    def http_url(self) -> str:
        """The server API's URL (RoomService, AgentDispatchService)."""
        return f"http://{self._listen_host}:{self.port}"

    def as_dict(self) -> dict[str, Any]:
        """The server's YAML config as a dict."""
        stun = f"{self.node_ip}:{self.turn_udp_port}"
        config: dict[str, Any] = {
            "port": self.port,
            "bind_addresses": [self.bind_address or self.node_ip],
            "rtc": {
                "tcp_port": self.tcp_port,
                "udp_port": self.udp_port,
                "node_ip": self.node_ip,
                "use_external_ip": False,
                "enable_loopback_candidate": ipaddress.ip_address(self.node_ip).is_loopback,
                # Without this the server gives clients public STUN servers.
                "stun_servers": [stun],
            },
            # The embedded TURN server answers STUN binding requests on this machine.
            "turn": {"enabled": True, "udp_port": self.turn_udp_port, "tls_port": 0},
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": self.log_level, "pion_level": "error"},
            "room": {"auto_create": False},
        }
        if self.webhook_urls:
            config["webhook"] = {"api_key": self.api_key, "urls": list(self.webhook_urls)}
        return config

    def write(self, path: Path) -> Path:
        """Write the YAML config to `path` (mode 0600: it holds the secret)."""
        path.write_text(yaml.safe_dump(self.as_dict(), sort_keys=False))
        path.chmod(0o600)
        return path


def answers(http_url: str, timeout: float = 1.0) -> bool:
    """Whether a LiveKit server answers its health check at `http_url`."""
    try:
        with urllib.request.urlopen(http_url.rstrip("/") + "/", timeout=timeout) as resp:  # noqa: S310 - our URL
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class LiveKitServer:
    """One livekit-server process with a generated config; `start()`, `stop()`, `kill()`."""

    def __init__(self, config: LiveKitConfig, workdir: Path, *, binary: str | None = None) -> None:
        """Run `binary` (default: `find_binary()`) with `config`, keeping its files in `workdir`."""
        self.config = config
        self.workdir = workdir
        self.binary = binary or find_binary()
        self.config_path = workdir / "livekit.yaml"
        self.log_path = workdir / "livekit.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> LiveKitServer:
        """Start the server and wait until it answers.

        Raises:
            RuntimeError: it exited or did not answer in time; the message ends with its log.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config.write(self.config_path)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our binary and config
                [self.binary, "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # A group of its own: a terminal's Ctrl-C reaches whoever started it, who
                # stops it after the processes that use it.
                process_group=0,
            )
        deadline = time.monotonic() + timeout
        while not answers(self.config.http_url, timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"livekit-server did not start; its log:\n{self.log_tail()}")
            time.sleep(0.1)
        return self

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server logged."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout: float = 10.0, *, grace: float = 2.0) -> None:
        """Stop it gracefully (SIGTERM), or kill it after `timeout` seconds.

        On its first SIGTERM the server waits for every participant to leave; a second
        one, `grace` seconds later, makes it close their rooms and exit.
        """
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(min(grace, timeout))
            return
        except subprocess.TimeoutExpired:
            pass
        self.process.terminate()
        try:
            self.process.wait(max(timeout - grace, 0.1))
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """Kill it at once (SIGKILL): its rooms vanish without a `room_finished`."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
