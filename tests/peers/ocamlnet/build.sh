#!/usr/bin/env bash
# Builds the Ocamlnet 4.1.9 peers (echo_server, echo_client) into OUT (default
# target/peers/ocamlnet). Needs libocamlnet-ocaml-dev, ocaml-nox and ocaml-findlib
# (scripts/peers installs them). Rebuilds only when a source changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../../target/peers/ocamlnet}
mkdir -p "$out"
out=$(cd "$out" && pwd)
stamp="$out/.built"
if [ -f "$stamp" ] && [ -z "$(find "$here" -newer "$stamp" -type f)" ]; then
  exit 0
fi
cd "$out"
cp "$here"/*.ml .
for main in echo_server echo_client; do
  ocamlfind ocamlopt -package rpc,rpc-auth-local,unix,equeue,netstring -linkpkg \
    echo_program.ml "$main.ml" -o "$main" 2>&1 | grep -v "^File\|deprecated\|^Alert\|^ *\^\|^[0-9]* |" || true
  [ -x "$main" ] || { echo "building $main failed" >&2; exit 1; }
done
touch "$stamp"
