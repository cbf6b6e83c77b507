"""A TLS server that requires a client certificate in the handshake and
ends it with an alert when none (or a foreign one) comes: what servers
other than nginx do.  Used by run-net.sh; serves until killed.

usage: tls_refuser.py PORT WORKDIR
"""
import os
import select
import socket
import ssl
import sys
import time


def main():
    port, work = int(sys.argv[1]), sys.argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(f"{work}/server.pem", f"{work}/server.key")
    ctx.load_verify_locations(f"{work}/ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    with socket.create_server(("127.0.0.1", port)) as srv:
        while True:
            conn, _ = srv.accept()
            tls = ctx.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
            tls.settimeout(5)
            try:
                tls.do_handshake()
                # A client that got in: answer like a server would.
                tls.recv(65536)
                tls.sendall(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n"
                            b"Connection: close\r\n\r\n")
            except (ssl.SSLError, OSError) as exc:
                print("refused:", exc, flush=True)
                drain(tls.fileno())
            finally:
                tls.close()


def drain(fd):
    """Reads what the client still sends (its request) before the close:
    closing with unread data makes the kernel reset the connection, and
    the client would see the reset instead of the alert."""
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                if not os.read(fd, 65536):
                    return
            except OSError:
                return


if __name__ == "__main__":
    main()
