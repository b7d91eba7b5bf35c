"""``fraudstream desk serve`` as operators run it (a real uvicorn process on loopback): forwarded
headers are believed only from the proxies named by ``--trusted-proxies``, and a chunked body is
cut off at the cap while it is still arriving."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from desk.app import MAX_BODY
from producer.broker import free_port
from store.db import connect


def serve(db: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "FRAUDSTREAM_DESK_SECRET": "serve-test-secret-long-enough"}
    env.pop("FRAUDSTREAM_DESK_TRUSTED_PROXIES", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "fraudstream_cli", "desk", "serve", "--port", str(port),
         "--db", db, *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        try:
            httpx.get(f"{url}/login", timeout=1)
            return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("desk serve did not answer within 60 s")


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'desk.db'}"
    connect(url).dispose()  # migrated before the server starts
    return url


@pytest.fixture
def desk_server(db: str) -> Iterator[str]:
    proc, url = serve(db)
    yield url
    proc.terminate()
    proc.wait(timeout=30)


def failed_logins(url: str, n: int) -> list[int]:
    """``n`` wrong logins, each with another user name and another ``X-Forwarded-For``."""
    return [
        httpx.post(f"{url}/login", data={"username": f"u{i}", "password": "x"},
                   headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(n)
    ]


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(db, desk_server):
    assert failed_logins(desk_server, 7) == [401] * 5 + [429] * 2
    proc, url = serve(db, "--trusted-proxies", "127.0.0.1")
    try:  # behind a named proxy, each forwarded client address is counted on its own
        assert failed_logins(url, 7) == [401] * 7
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_a_chunked_body_is_cut_off_while_it_arrives(desk_server):
    port = int(desk_server.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /api/alerts/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer fsd_bogus\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
    sent, answer = 0, b""
    try:
        while sent < 512 * 1024 * 1024 and not answer:
            sock.sendall(chunk)
            sent += 65536
            if select.select([sock], [], [], 0)[0]:
                answer = sock.recv(65536)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if not answer:
        sock.settimeout(10)
        answer = sock.recv(65536)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # Socket buffers hold a few MiB at most: the server stopped reading near the cap.
    assert sent < MAX_BODY + 32 * 1024 * 1024
