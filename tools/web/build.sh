#!/usr/bin/env bash
# Builds the web page and the local grpc-web proxy into OUT (default build/web):
#   OUT/gen/...          TypeScript generated from proto/ by protoc-gen-es (buf generate)
#   OUT/site/index.html  the page, OUT/site/app.js its bundle (esbuild)
#   OUT/proxy.cjs        the proxy, one file for Node.js
# The node packages come from tools/node_modules (tools/setup.sh installs them).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$(mkdir -p "${1:-$root/build/web}" && cd "${1:-$root/build/web}" && pwd)
bin="$root/tools/node_modules/.bin"
[ -x "$bin/esbuild" ] || { echo "web: run tools/setup.sh first (no tools/node_modules)" >&2; exit 1; }

# The generated code sits next to the sources (tools/web/gen, not committed) so both bundles
# resolve it and the npm packages the same way.
rm -rf "$here/gen"
(cd "$root/proto" && PATH="$bin:$PATH" "$bin/buf" generate --template "$here/buf.gen.yaml" -o "$here")
mkdir -p "$out/site"
cp "$here/index.html" "$here/style.css" "$out/site/"
"$bin/esbuild" "$here/app.ts" --bundle --minify --format=esm --target=es2022 --log-level=warning --sourcemap \
  --outfile="$out/site/app.js"
"$bin/esbuild" "$here/proxy.ts" --bundle --platform=node --format=cjs --target=node18 --log-level=warning \
  --outfile="$out/proxy.cjs"
echo "$out"
