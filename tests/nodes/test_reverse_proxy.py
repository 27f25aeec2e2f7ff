"""The README's reverse-proxy example, run for real: nginx in front of two nodes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from roomz import AsyncClient
from tests.server.proc import ServerProcess, free_port

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture
def nginx_conf(tmp_path: Path) -> Callable[[int, int, int], Path]:
    """The example config on the given ports, its public name 127.0.0.1, ready to run
    from ``tmp_path``."""
    def render(port: int, node1: int, node2: int) -> Path:
        text = (EXAMPLE.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                .replace("127.0.0.1:8001", f"127.0.0.1:{node1}")
                .replace("127.0.0.1:8002", f"127.0.0.1:{node2}")
                .replace("chat.example.com", "127.0.0.1"))
        (tmp_path / "tmp").mkdir(exist_ok=True)
        conf = tmp_path / "nginx.conf"
        conf.write_text(text)
        return conf
    return render


@asynccontextmanager
async def two_nodes_behind_nginx(node: Callable[..., ServerProcess],
                                 nginx_conf: Callable[[int, int, int], Path], tmp_path: Path
                                 ) -> AsyncIterator[tuple[str, int, ServerProcess, ServerProcess]]:
    """``(public URL, its port, node one, node two)``: the example config's nginx, once
    it listens, in front of two nodes that know it as their trusted proxy and public URL."""
    assert Path(NGINX).exists(), "nginx is not installed: run ./dev setup"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    behind_nginx = {"ROOMZ_PUBLIC_URL": url, "ROOMZ_TRUSTED_PROXIES": "127.0.0.1"}
    async with node(**behind_nginx) as one, node(**behind_nginx) as two:
        conf = nginx_conf(port, one.port or 0, two.port or 0)
        proxy = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(conf),
                                  "-g", "daemon off;"], stderr=subprocess.PIPE)
        try:
            async def up() -> None:
                while True:
                    try:
                        _, writer = await asyncio.open_connection("127.0.0.1", port)
                        writer.close()
                        return
                    except OSError:
                        await asyncio.sleep(0.05)
            await asyncio.wait_for(up(), 10)
            yield url, port, one, two
        finally:
            proxy.terminate()
            proxy.communicate(timeout=5)  # reaps it and closes its stderr pipe


async def test_clients_chat_through_nginx_in_front_of_two_nodes(
        node: Callable[..., ServerProcess], nginx_conf: Callable[[int, int, int], Path],
        tmp_path: Path) -> None:
    """Sign in through nginx (the link names nginx's URL), connect several connections
    through it, and chat; a request naming another host never reaches a node."""
    async with two_nodes_behind_nginx(node, nginx_conf, tmp_path) as (url, port, one, two):
        clients: list[AsyncClient] = []
        try:
            first = AsyncClient(url, session_cache_file=tmp_path / "s.json")
            clients.append(first)
            assert await first.login("frank@example.com")
            line = await asyncio.wait_for(_link_from(one, two), 10)
            assert f"magic link for frank@example.com: {url}/auth/verify?token=" in line
            await first.connect(line.rsplit("/token ", 1)[1].split()[0].rstrip(")"))
            assert await _answer_for_host(port, "attacker.example") == b""
            received: list[str] = []
            for _ in range(5):  # ip_hash sends all of them to one node: the bus still works
                other = AsyncClient(url, session_cache_file=tmp_path / "s.json")
                other.on("message", lambda d: received.append(d["content"]))
                await other.connect()
                clients.append(other)
            ack = await first.send("through nginx")
            assert ack["status"] == "ok"

            async def all_got_it() -> None:
                while received.count("through nginx") < 5:
                    await asyncio.sleep(0.02)
            await asyncio.wait_for(all_got_it(), 5)
        finally:
            for client in clients:
                await client.disconnect()


async def test_a_page_at_the_public_url_opens_socket_io_through_nginx(
        node: Callable[..., ServerProcess], nginx_conf: Callable[[int, int, int], Path],
        tmp_path: Path) -> None:
    """A browser on the chat page at the public URL, a port other than 443 (the example's
    own 8000), sends that URL's origin with its Socket.IO handshake; the example proxy
    names the host without its port, yet the node lets the page in. Another site's page
    stays out."""
    async with two_nodes_behind_nginx(node, nginx_conf, tmp_path) as (url, _, _, _), \
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        async def status_from(origin: str) -> int:
            handshake = url + "/socket.io/?EIO=4&transport=polling"
            async with http.get(handshake, headers={"Origin": origin}) as resp:
                return resp.status
        assert await status_from(url) == 200
        assert await status_from("http://attacker.example") == 400


async def _link_from(*servers: ServerProcess) -> str:
    """The log line of the first magic link either node logged."""
    while True:
        for server in servers:
            for line in server.lines:
                if "/token " in line:
                    return line
        await asyncio.sleep(0.05)


async def _answer_for_host(port: int, host: str) -> bytes:
    """What nginx answers a request whose Host header names ``host``."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
    try:
        writer.write(f"POST /auth/request-magic-link HTTP/1.1\r\nHost: {host}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}".encode())
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
