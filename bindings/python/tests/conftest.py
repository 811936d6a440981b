"""Shared fixtures."""

import socket

import pytest


@pytest.fixture
def closed_port():
    """A loopback TCP port that refuses connections for the whole test: bound (so no one
    else gets it) but not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
    finally:
        sock.close()
