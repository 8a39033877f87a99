"""`python -m dev`, what `make dev` runs: LiveKit when it is this machine's to start, the token
server and the worker; a session without provider keys says what is missing; one signal
stops everything.

The runs start the real livekit-server `make livekit` provides (skipped without one);
every address they use is this machine's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import aiohttp
import psutil
import pytest
import yaml
from livekit import api

from dev.__main__ import ServiceFailed, livekit_config, provide_livekit
from dev.addresses import is_this_machine, local_address, node_ip
from dev.livekit_server import LiveKitServerMissing, find_binary, free_port
from dev.settings import Settings as DevSettings
from token_server.settings import Settings as TokenServerSettings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK = "http://127.0.0.1:8080/livekit/webhook"


def token_server_settings(**values: object) -> TokenServerSettings:
    return TokenServerSettings(_env_file=None, **values)


def test_loopback_is_this_machine_and_media_goes_to_one_of_its_interfaces():
    assert local_address("localhost") in {"127.0.0.1", "::1"}
    assert local_address("127.0.0.1") == "127.0.0.1"
    assert local_address("203.0.113.7") is None  # TEST-NET-3: never an address of ours
    media = node_ip("127.0.0.1")
    assert ipaddress.ip_address(media).version == 4 and is_this_machine(media)
    others = [
        a.address
        for name, addrs in psutil.net_if_addrs().items()
        if psutil.net_if_stats()[name].isup
        for a in addrs
        if a.family == socket.AF_INET and not ipaddress.ip_address(a.address).is_loopback
    ]
    if others:  # as livekit-server --dev: Chromium gathers no ICE candidate on loopback alone
        assert media in others
    # a URL on one of this machine's interfaces is used as it is
    assert node_ip(media) == media


def test_the_generated_config_names_only_this_machine_and_the_settings_keys():
    settings = token_server_settings(livekit_api_key="k1", livekit_api_secret="s" * 40)
    config = livekit_config(
        settings, DevSettings(_env_file=None), address="127.0.0.1", port=7880, webhook_url=WEBHOOK
    )
    body = config.as_dict()
    assert body["port"] == 7880 and body["bind_addresses"] == ["127.0.0.1"]
    assert body["keys"] == {"k1": "s" * 40}
    assert body["webhook"] == {"api_key": "k1", "urls": [WEBHOOK]}
    assert body["rtc"]["use_external_ip"] is False
    # clients get the embedded TURN server as STUN, on this machine: never the public defaults
    assert body["turn"]["enabled"] is True
    assert body["rtc"]["stun_servers"] == [f"{config.node_ip}:{body['turn']['udp_port']}"]
    for ip in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", yaml.safe_dump(body)):
        assert is_this_machine(ip), ip

    pinned = livekit_config(
        settings,
        DevSettings(_env_file=None, livekit_node_ip="10.1.2.3"),
        address="127.0.0.1",
        port=7880,
        webhook_url=WEBHOOK,
    )
    assert pinned.node_ip == "10.1.2.3"  # LIVEKIT_NODE_IP wins


def test_a_remote_livekit_is_only_named(tmp_path, capsys):
    settings = token_server_settings(livekit_url="wss://203.0.113.7:7880")
    assert (
        provide_livekit(settings, DevSettings(_env_file=None), webhook_url=WEBHOOK, workdir=tmp_path) is None
    )
    assert "LiveKit at wss://203.0.113.7:7880 (not on this machine" in capsys.readouterr().out
    assert not list(tmp_path.iterdir())


@pytest.fixture
def answering_server() -> Iterator[int]:
    """A port on 127.0.0.1 that answers 200, as a running LiveKit does."""

    class OK(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), OK)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_a_livekit_already_running_here_is_left_alone(tmp_path, capsys, answering_server):
    settings = token_server_settings(livekit_url=f"ws://127.0.0.1:{answering_server}")
    assert (
        provide_livekit(settings, DevSettings(_env_file=None), webhook_url=WEBHOOK, workdir=tmp_path) is None
    )
    out = capsys.readouterr().out
    assert "already running, left alone" in out and WEBHOOK in out


def test_a_port_held_by_something_else_is_one_clear_error(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()  # accepts nothing: not a LiveKit
        port = holder.getsockname()[1]
        settings = token_server_settings(livekit_url=f"ws://127.0.0.1:{port}")
        with pytest.raises(
            ServiceFailed, match=f"port {port} .* is taken by something that is not a LiveKit"
        ):
            provide_livekit(settings, DevSettings(_env_file=None), webhook_url=WEBHOOK, workdir=tmp_path)


# -- the launcher as make dev runs it ------------------------------------------------------


@pytest.fixture(scope="module")
def livekit_binary() -> str:
    try:
        return find_binary()
    except LiveKitServerMissing as exc:
        pytest.skip(str(exc))


class Launcher:
    """`python -m dev` with its merged output collected line by line."""

    def __init__(self, tmp_path: Path, *, port: int | None = None) -> None:
        self.livekit_port = free_port("127.0.0.1")
        self.port = port or free_port("127.0.0.1")
        self.workdir = tmp_path / "livekit"
        clean = {
            k: v
            for k, v in os.environ.items()
            if k == "LIVEKIT_SERVER"  # the binary `make livekit` names
            or not (
                k.startswith(("LIVEKIT_", "DEEPGRAM_", "OPENAI_", "CHATTERBOX_"))
                or k in {"TOKEN_SERVER_URL", "LOAD_THRESHOLD", "LOG_LEVEL"}
            )
        }
        self.env = {
            **clean,
            "LIVEKIT_URL": f"ws://127.0.0.1:{self.livekit_port}",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/oshara.db",
            "TOKEN_SERVER_API_KEYS": "launcher-key",
            "AGENT_NAME": "launcher-test-agent",
            # no voice weights here: the worker must say so, not wait for torch
            "CHATTERBOX_CACHE_DIR": str(tmp_path / "voices"),
        }
        self.lines: list[str] = []
        self.process = subprocess.Popen(  # noqa: S603 - our own module
            [sys.executable, "-m", "dev", "--port", str(self.port), "--workdir", str(self.workdir)],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            process_group=0,  # as from a terminal: signals reach the launcher alone
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, pattern: str, seconds: float) -> str:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for line in self.lines:
                if re.search(pattern, line):
                    return line
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; the output:\n{self.output}")

    def descendants(self) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=True)

    def stop(self, timeout: float = 60) -> int:
        """SIGINT, as Ctrl-C in a terminal; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.wait(timeout)

    def wait(self, timeout: float = 60) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            raise
        self._reader.join(10)  # the whole output
        return code


def gone(processes: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.filterwarnings("ignore:The HMAC key is 6 bytes long")  # ListRooms with make dev's dev keys
async def test_make_dev_runs_a_session_that_says_what_is_missing_and_ctrl_c_stops_everything(
    tmp_path, livekit_binary
):
    launcher = Launcher(tmp_path)
    try:
        await launcher.wait_for(rf"^LiveKit on ws://127\.0\.0\.1:{launcher.livekit_port} \(started here", 30)
        await launcher.wait_for(rf"^token server on http://127\.0\.0\.1:{launcher.port} ", 60)
        await launcher.wait_for(r"registered worker", 120)
        await launcher.wait_for(r"^warning: sessions cannot talk: DEEPGRAM_API_KEY is not set", 1)
        livekit_url = f"http://127.0.0.1:{launcher.livekit_port}"
        token_server = f"http://127.0.0.1:{launcher.port}"
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{token_server}/v1/sessions",
                json={"agent": "support-bot", "metadata": {"user_name": "Dana"}},
                headers={"Origin": "http://localhost:3000"},
            ) as resp:
                started = await resp.json()
                assert resp.status == 201, started
            assert started["livekit_url"] == launcher.env["LIVEKIT_URL"]
            async with api.LiveKitAPI(livekit_url, "devkey", "secret", session=http) as lk:
                rooms = await lk.room.list_rooms(api.ListRoomsRequest())
            assert started["room_name"] in {room.name for room in rooms.rooms}

            # the worker takes the job, joins, and reports each missing provider
            await launcher.wait_for(r"received job request", 60)
            logs: list[dict] = []
            deadline = time.monotonic() + 90
            # the worker's reports and LiveKit's webhooks arrive in no fixed order
            while not {"session_ended", "participant_joined"} <= {e["type"] for e in logs}:
                assert time.monotonic() < deadline, (
                    f"no session_ended and agent join; the output:\n{launcher.output}"
                )
                await asyncio.sleep(0.5)
                async with http.get(
                    f"{token_server}/v1/sessions/{started['session_id']}/logs",
                    headers={"Authorization": "Bearer launcher-key"},
                ) as resp:
                    logs = (await resp.json())["events"]
        types = [e["type"] for e in logs]
        assert "participant_joined" in types  # LiveKit's own webhook: the agent joined the room
        errors = [e["message"] for e in logs if e["type"] == "error"]
        assert [m.split(" ")[0] for m in errors] == ["DEEPGRAM_API_KEY", "OPENAI_API_KEY", "CHATTERBOX_URL"]
        assert "python -m voice_service download chatterbox-en-v1" in errors[2]

        children = launcher.descendants()
        assert len(children) >= 3  # LiveKit, the token server, the worker (and its job processes)
    finally:
        code = launcher.stop()
    assert code == 0, launcher.output
    assert "stopping: worker, token server, LiveKit" in launcher.output
    assert not gone(children), launcher.output
    # quiet: no DEBUG lines, no warning per signed token, no stack traces
    assert " DEBUG " not in launcher.output
    assert "InsecureKeyLengthWarning" not in launcher.output
    assert "Traceback" not in launcher.output
    config = yaml.safe_load((launcher.workdir / "livekit.yaml").read_text())
    assert config["webhook"]["urls"] == [f"http://127.0.0.1:{launcher.port}/livekit/webhook"]


async def test_a_service_that_dies_at_start_is_one_line_and_stops_the_rest(tmp_path, livekit_binary):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))  # the token server's port, taken
        launcher = Launcher(tmp_path, port=holder.getsockname()[1])
        await launcher.wait_for(r"^LiveKit on .* \(started here", 30)
        children = launcher.descendants()
        code = launcher.wait()
    assert code == 1, launcher.output
    errors = [line for line in launcher.lines if line.startswith("error: ")]
    assert errors[-1] == "error: the token server exited at start with code 2 (its output above says why)"
    assert "stopping: LiveKit" in launcher.output
    assert "registered worker" not in launcher.output  # never started
    assert not gone(children)
