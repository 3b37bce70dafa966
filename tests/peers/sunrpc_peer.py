"""The Python sunrpc 1.1.0 peer for strata's rpc-record interop tests (loopback only).

  sunrpc_peer.py server PROG VERS
      Serves PROG VERS on 127.0.0.1 (a free port) with sunrpc's TCPServer: procedure 0 (NULL)
      and 1 (ECHO: an XDR string, answered back). Prints "listening PORT" first. Stops by
      itself after 30 s.

  sunrpc_peer.py call PORT PROG VERS FRAG_SIZE TEXT
      Sends ECHO(TEXT) to 127.0.0.1:PORT as one record cut into FRAG_SIZE-byte fragments
      with sunrpc's sendrecord, then prints one JSON line {"xid":..,"echo":..} or
      {"xid":..,"error":..} from the reply.
"""

import json
import signal
import socket
import sys
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)  # xdrlib

import sunrpc  # noqa: E402
import sunrpc.server  # noqa: E402
import sunrpc.utils  # noqa: E402

ECHO = 1


def serve(prog, vers):
    signal.alarm(30)

    class Echo(sunrpc.server.TCPServer):
        def __init__(self):
            super().__init__("127.0.0.1", 0, prog, vers)
            self.add_method(ECHO, self.echo)

        def echo(self, packer, unpacker):
            text = unpacker.unpack_string()
            self.turn_around(packer, unpacker)
            packer.pack_string(text)

    server = Echo()
    server.bind()
    server.sock.listen(8)  # before saying so: a client may connect at once
    print("listening", server.port, flush=True)
    while True:
        sock, _ = server.sock.accept()
        server.handle_call(sock)


def call(port, prog, vers, frag_size, text):
    signal.alarm(30)
    xid = 0x5A5A0001
    packer = sunrpc.Packer()
    packer.pack_callheader(xid, prog, vers, ECHO, (0, b""), (0, b""))
    packer.pack_string(text.encode())
    sock = socket.create_connection(("127.0.0.1", port))
    sunrpc.utils.sendrecord(sock, packer.get_buf(), frag_size)
    reply = sunrpc.utils.recvrecord(sock)
    sock.close()
    unpacker = sunrpc.Unpacker(reply)
    try:
        got, _verf = unpacker.unpack_replyheader()
        echo = unpacker.unpack_string().decode()
        print(json.dumps({"xid": got, "echo": echo}))
    except Exception as e:  # the reply said no: report it
        print(json.dumps({"xid": xid, "error": str(e)}))


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "server":
        serve(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "call":
        call(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        sys.exit(f"unknown mode {mode}")
