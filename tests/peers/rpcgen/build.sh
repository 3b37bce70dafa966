#!/usr/bin/env bash
# Builds the rpcgen/libtirpc peers (echo_server, echo_client) into OUT (default
# target/peers/rpcgen) from rpc_echo.x: rpcgen writes the header, the XDR routines, the
# client stubs and the server dispatch; the mains are ours. Needs rpcgen and libtirpc-dev
# (scripts/peers installs them). Safe to re-run: rebuilds only when a source changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../../target/peers/rpcgen}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp="$out/.built"
if [ -f "$stamp" ] && [ -z "$(find "$here" -newer "$stamp" -type f)" ]; then
  exit 0
fi
cd "$out"
cp "$here/rpc_echo.x" .
rm -f rpc_echo.h rpc_echo_xdr.c rpc_echo_clnt.c rpc_echo_svc.c
rpcgen -h -o rpc_echo.h rpc_echo.x
rpcgen -c -o rpc_echo_xdr.c rpc_echo.x
rpcgen -l -o rpc_echo_clnt.c rpc_echo.x
rpcgen -m -o rpc_echo_svc.c rpc_echo.x
flags="-O2 -I. -I/usr/include/tirpc"
cc $flags -o echo_server "$here/echo_server.c" rpc_echo_svc.c rpc_echo_xdr.c -ltirpc
cc $flags -o echo_client "$here/echo_client.c" rpc_echo_clnt.c rpc_echo_xdr.c -ltirpc
touch "$stamp"
