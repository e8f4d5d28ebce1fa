"""Clients resume their TLS session on any worker: the session ticket keys come from the
broker (ticket_keys.c), not from each worker. No ticket survives a restart; `session_tickets =
0` issues none."""
import os
import signal
import socket
import ssl

import pytest


def handshake(gw, ctx, session=None):
    """A TLS connection to the IMAP listener; returns (session for later, resumed?)."""
    raw = socket.create_connection(("127.0.0.1", gw.imaps_port), timeout=30)
    with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
        assert tls.recv(4096).startswith(b"* OK")  # the ticket arrives with the greeting
        tls.sendall(b"a1 LOGOUT\r\n")
        while tls.recv(4096):
            pass
        return tls.session, tls.session_reused


def only_worker(gw, keep):
    """SIGSTOPs every worker but keep (the listening sockets stay shared: keep accepts)."""
    stopped = [p for p in gw.worker_pids() if p != keep]
    for p in stopped:
        os.kill(p, signal.SIGSTOP)
    return stopped


def resume(stopped):
    for p in stopped:
        os.kill(p, signal.SIGCONT)


@pytest.fixture
def two_workers(fleet):
    gw = fleet.new(f"tickets-{len(fleet.instances)}", workers=2)
    assert len(gw.worker_pids()) == 2
    return gw


def test_session_made_on_one_worker_resumes_on_the_other(two_workers):
    gw = two_workers
    ctx = gw.client_tls()
    first, second = gw.worker_pids()
    stopped = only_worker(gw, first)
    try:
        session, reused = handshake(gw, ctx)
        assert not reused and session is not None and session.has_ticket
    finally:
        resume(stopped)
    stopped = only_worker(gw, second)
    try:
        for _ in range(3):
            _, reused = handshake(gw, ctx, session)
            assert reused, "the other worker could not open the first worker's ticket"
    finally:
        resume(stopped)


def test_no_ticket_survives_a_restart(two_workers):
    gw = two_workers
    ctx = gw.client_tls()
    session, _ = handshake(gw, ctx)
    assert handshake(gw, ctx, session)[1]
    gw.restart()
    assert not handshake(gw, ctx, session)[1]


def test_session_tickets_off(fleet):
    gw = fleet.new("notickets", tls_lines=["session_tickets = 0"])
    ctx = gw.client_tls()
    session, _ = handshake(gw, ctx)
    assert session is None or not session.has_ticket
    assert not handshake(gw, ctx, session)[1]
