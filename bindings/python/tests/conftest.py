"""A relay on 127.0.0.1 (the `sotto-relay` binary, an ephemeral port, a temporary SQLite file)
and a team world on it: an owner, an agent and a visitor with an open conversation.

The relay binary comes from $SOTTO_RELAY_BIN (scripts/test-bindings.sh sets it)."""

import asyncio
import os
import re
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass

import pytest

import sotto

RELAY_START_SECS = 20
EVENT_WAIT_MS = 10_000


class Relay:
    """One relay process with one tenant."""

    def __init__(self, binary: str):
        self.dir = tempfile.TemporaryDirectory(prefix="sotto-py-relay-")
        db = os.path.join(self.dir.name, "relay.sqlite")
        out = subprocess.run(
            [binary, "tenant", "create", "--name", "acme", "--database", db],
            check=True, capture_output=True, text=True, timeout=RELAY_START_SECS,
        ).stdout
        fields = dict(line.split(": ", 1) for line in out.strip().splitlines())
        self.widget_id = fields["widget_id"]
        self.bootstrap_code = fields["bootstrap_code"]
        self.process = subprocess.Popen(
            [binary, "serve", "--database", db, "--listen", "127.0.0.1:0",
             "--rate-per-address", "0", "--rate-per-device", "0", "--log", "warn,sotto_relay::server=info"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self.url = self._wait_for_address()
        # Keep draining the log so the relay never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _wait_for_address(self) -> str:
        deadline = time.monotonic() + RELAY_START_SECS
        while time.monotonic() < deadline:
            line = self.process.stderr.readline()
            if not line:
                break
            match = re.search(r"relay listening addr=(127\.0\.0\.1:\d+)", line)
            if match:
                return "http://" + match.group(1)
        self.stop()
        raise RuntimeError("the relay did not start")

    def _drain(self) -> None:
        for _ in self.process.stderr:
            pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.dir.cleanup()


@pytest.fixture(scope="session")
def relay():
    binary = os.environ.get("SOTTO_RELAY_BIN")
    if not binary:
        pytest.fail("set SOTTO_RELAY_BIN to the sotto-relay binary (scripts/test-bindings.sh does)")
    r = Relay(binary)
    yield r
    r.stop()


@dataclass
class Device:
    client: "sotto.SottoClient"
    path: str
    key: bytes


class Devices:
    """Registers devices in a temporary directory of SQLite stores."""

    def __init__(self, relay: Relay, directory: str):
        self.relay = relay
        self.dir = directory
        self.count = 0

    def path(self) -> str:
        self.count += 1
        return os.path.join(self.dir, f"device-{self.count}.sqlite")

    async def register(self, kind, bootstrap: bool = False) -> Device:
        path, key = self.path(), sotto.new_store_key()
        client = await sotto.register_client(
            path, key, self.relay.url, self.relay.widget_id, kind,
            self.relay.bootstrap_code if bootstrap else None,
        )
        return Device(client, path, key)


@dataclass
class World:
    devices: Devices
    owner: Device
    agent: Device
    agent_member: str
    visitor: Device
    team: "sotto.TeamReference"
    conversation: str


async def make_world(devices: Devices, owner: Device) -> World:
    """A new team of `owner` with one agent, and a visitor with an open conversation."""
    team = await owner.client.create_team(None)
    agent = await devices.register(sotto.ClientKind.MEMBER)
    member = await owner.client.invite_member(team.team_id, agent.client.device_id(), sotto.TeamRole.AGENT)
    await agent.client.join_team(team.reference)
    visitor = await devices.register(sotto.ClientKind.VISITOR)
    conversation = await visitor.client.open_conversation(team.reference)
    return World(devices, owner, agent, member, visitor, team, conversation)


@pytest.fixture(scope="session")
def owner(relay, tmp_path_factory):
    """The tenant's bootstrap owner; it creates a new team for every test (the relay lets the
    bootstrap device, or an owner of another team, create teams)."""
    devices = Devices(relay, str(tmp_path_factory.mktemp("owner")))
    return asyncio.run(devices.register(sotto.ClientKind.MEMBER, bootstrap=True))


@pytest.fixture
def devices(relay, tmp_path):
    return Devices(relay, str(tmp_path))


@pytest.fixture
def world(devices, owner):
    return asyncio.run(make_world(devices, owner))


async def next_matching(subscription, predicate, wait_ms: int = EVENT_WAIT_MS):
    """The first event matching `predicate`, within `wait_ms`."""
    deadline = time.monotonic() + wait_ms / 1000
    while True:
        left = int((deadline - time.monotonic()) * 1000)
        assert left > 0, "no matching event in time"
        event = await subscription.next(left)
        assert event is not None, "no matching event in time"
        if predicate(event):
            return event


def texts(history) -> list:
    return [m.body.text for m in history if isinstance(m.body, sotto.MessageBody.TEXT)]
