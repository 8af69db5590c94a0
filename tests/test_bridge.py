"""The libsignal bridge process: start, call, errors, restart."""

import pytest

from harness.errors import BridgeError
from libsignal_bridge import Bridge


def test_bridge_ping_answers():
    with Bridge() as bridge:
        assert bridge.call("ping")["pong"] is True


def test_bridge_unknown_op_rejected():
    with Bridge() as bridge:
        with pytest.raises(BridgeError, match="unknown op"):
            bridge.call("no-such-op")


def test_bridge_restarts_after_kill():
    with Bridge() as bridge:
        first_pid = bridge.call("ping")["pid"]
        bridge._process.kill()
        bridge._process.wait()
        assert bridge.call("ping")["pid"] != first_pid


def test_bridge_missing_node_reported():
    bridge = Bridge(node="no-such-node-binary")
    with pytest.raises(BridgeError, match="not found"):
        bridge.call("ping")
