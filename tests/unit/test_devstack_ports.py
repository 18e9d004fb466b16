"""The local stack's functions keep their ports across a restart.

A port whose last connection is in TIME_WAIT (a function just stopped) is one gunicorn can
listen on again (it sets SO_REUSEADDR, as servers do), so the stack must not take it for busy
and move the function to a random port: a webhook tunnel pointed at it would go quiet.
"""

from __future__ import annotations

import socket

from shared.devstack.functions import HOST, port_free


def test_a_port_in_time_wait_is_free_and_a_listening_one_is_not() -> None:
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((HOST, 0))
        server.listen()
        port = server.getsockname()[1]
        assert not port_free(port)  # listening: taken
        client = socket.create_connection((HOST, port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: its end goes to TIME_WAIT
        client.close()
    assert port_free(port)
