"""Starts Debian's rpcbind in the foreground on loopback only (spec §3.1).

  rpcbind_loopback.py [SECONDS]

Binds TCP and UDP on 127.0.0.1:111 (and ::1:111 when IPv6 loopback exists) and the Unix
socket /run/rpcbind.sock, hands them to rpcbind through the socket-activation protocol
(LISTEN_FDS, LISTEN_PID), and execs `rpcbind -f -w`: rpcbind then binds no wildcard
address. Needs root (port 111, and rpcbind drops to _rpc itself). An alarm stops rpcbind
after SECONDS (default 120) should the test that started it not.
"""

import os
import signal
import socket
import sys

SD_LISTEN_FDS_START = 3


def bound(family, kind, addr):
    sock = socket.socket(family, kind)
    if family != socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    sock.bind(addr)
    if kind == socket.SOCK_STREAM:
        sock.listen(64)
    return sock


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    sockets = [
        bound(socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 111)),
        bound(socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 111)),
    ]
    try:
        sockets.append(bound(socket.AF_INET6, socket.SOCK_STREAM, ("::1", 111)))
        sockets.append(bound(socket.AF_INET6, socket.SOCK_DGRAM, ("::1", 111)))
    except OSError:
        pass  # no IPv6 loopback here
    path = "/run/rpcbind.sock"
    if os.path.exists(path):
        os.unlink(path)
    sockets.append(bound(socket.AF_UNIX, socket.SOCK_STREAM, path))
    for i, sock in enumerate(sockets):
        fd = SD_LISTEN_FDS_START + i
        os.dup2(sock.fileno(), fd)
        os.set_inheritable(fd, True)
    os.environ["LISTEN_FDS"] = str(len(sockets))
    os.environ["LISTEN_PID"] = str(os.getpid())  # exec keeps the pid
    signal.alarm(seconds)  # survives exec: SIGALRM ends rpcbind
    os.execv("/sbin/rpcbind", ["rpcbind", "-f", "-w"])


if __name__ == "__main__":
    main()
