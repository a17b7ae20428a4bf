#!/usr/bin/env bash
# Installs every Debian package QAI needs to build, test and run. Idempotent: packages already
# present are skipped, so a second run costs a dpkg query and nothing more.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libsoci-dev libboost-dev libpq-dev libssl-dev nlohmann-json3-dev libcpp-httplib-dev libcurl4-openssl-dev
  libbrotli-dev zlib1g-dev libseccomp-dev
  # the orchestrator's DiffVersions (header-only)
  libdtl-dev
  # qai-sandbox's version downloads (.zip, .tar.gz), and unzip for the tests and the demo to
  # check them
  libarchive-dev unzip
  prometheus-cpp-dev
  postgresql postgresql-contrib iproute2 curl
  # qai-sandbox: bwrap (prlimit and setpriv come with util-linux)
  bubblewrap util-linux
  googletest libgtest-dev libgmock-dev
  # the sanitizer tree and the fuzz targets (tests/fuzz): clang with its ASan, UBSan and
  # libFuzzer runtimes
  clang libclang-rt-14-dev
  # the C++ style check (.clang-format; tests/layout/format_test.sh)
  clang-format
  # tests/deploy: Debian's python3 with PyYAML
  python3 python3-yaml
  # tests/web: the page in headless Chromium (driven by playwright-core from npm)
  chromium fonts-dejavu-core
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl renders the k8s/ overlays in tests/deploy. A machine may carry its own build; Debian's
# kubernetes-client (kubectl 1.20, kustomize v2.0.3, which k8s/ keeps to) is the fallback.
if ! command -v kubectl >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
fi

# Node.js (for buf, from the npm registry): the machine may already carry its own build with npm;
# Debian's packages are the fallback.
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

# The npm packages of tools/package.json (buf, the web page's and proxy's Connect and protobuf
# packages, esbuild, playwright-core) are kept inside tools/node_modules so nothing global
# changes; they are installed again only when package.json changes.
here=$(cd "$(dirname "$0")" && pwd)
stamp="$here/node_modules/.qai-package-json.sha256"
want=$(sha256sum "$here/package.json" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing tools/package.json's packages from npm" >&2
  # Versions are pinned exactly in package.json, so no lock file is kept: npm writes lock files
  # without other platforms' optional packages (buf's and esbuild's binaries), which `npm ci`
  # then refuses.
  (cd "$here" && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
  echo "$want" >"$stamp"
fi
echo "setup: ok" >&2
