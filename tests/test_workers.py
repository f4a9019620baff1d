"""`serve --workers N`: the listening sockets of the workers (recommender.serving.workers)."""

from __future__ import annotations

import socket

from recommender.serving.workers import reuseport_socket


def test_the_listener_of_several_workers_is_tcp_so_answers_are_not_delayed() -> None:
    """asyncio enables TCP_NODELAY only on accepted sockets whose protocol is IPPROTO_TCP;
    they inherit it from the listener (uvicorn's own has 0: ~40 ms per keep-alive answer)."""
    listener = reuseport_socket("127.0.0.1", 0)
    try:
        listener.listen(1)
        client = socket.create_connection(listener.getsockname()[:2])
        accepted, _ = listener.accept()
        assert listener.proto == socket.IPPROTO_TCP and accepted.proto == socket.IPPROTO_TCP
        accepted.close()
        client.close()
    finally:
        listener.close()
