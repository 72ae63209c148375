"""guestfwd helper: QEMU's user network runs this once per guest TCP
connection to a forwarded address (guestfwd=tcp:ADDR:PORT-cmd:python3 relay.py
127.0.0.1 P), with the connection on its stdin and stdout; it relays the bytes
to 127.0.0.1:P and back. (A `guestfwd=...-tcp:HOST:PORT` chardev would carry a
single connection for the whole run, and HTTP clients open many.) Only
loopback targets are accepted. Standard library only."""

import os
import select
import socket
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    if not host.startswith("127."):
        sys.exit(2)
    up = socket.create_connection((host, port), timeout=10)
    up.settimeout(None)
    fds = [0, up.fileno()]
    while fds:
        ready, _, _ = select.select(fds, [], [], 600)
        if not ready:
            break
        for fd in ready:
            if fd == 0:
                data = os.read(0, 65536)
                if data:
                    up.sendall(data)
                else:
                    fds.remove(0)
                    try:
                        up.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
            else:
                data = up.recv(65536)
                if not data:
                    return
                while data:
                    data = data[os.write(1, data):]


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError):
        sys.exit(1)
