#!/usr/bin/env bash
# Installs every Debian 12 package that edgellm's build, tests and benchmarks need;
# with --build-only, just what building the three programs needs (the Dockerfiles).
# Idempotent: apt-get skips what is already installed. Run as root (or with sudo).
set -euo pipefail

# What building edgellmd, edgellm-aggregator and the edgellm CLI needs.
build_packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # LibTorch (CPU) and a fast BLAS under it: without the pthread OpenBLAS,
  # LibTorch falls back to reference BLAS and runs about 3x slower.
  libtorch-dev libopenblas0-pthread libopenblas-pthread-dev
  # gRPC and Protobuf (the inference API), systemd notification
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libsystemd-dev
  # Boost.Beast and Asio (the HTTP API, the metrics and health endpoint), YAML (the daemon's config)
  libboost-dev libyaml-cpp-dev
  # OpenSSL: TLS certificates, SHA-256, Ed25519 release signatures; its command line makes the PKI
  libssl-dev openssl
  # the aggregator's state (SQLite in WAL mode) and update compression (zstd)
  libsqlite3-dev sqlite3 libzstd-dev
  # error types (absl::Status), JSON, command-line parsing, logging
  libabsl-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  # Unicode character classes for the byte-level BPE pre-tokenizer
  libicu-dev
)
# What the tests, benchmarks and fuzzers need besides.
test_packages=(
  # clang and its libFuzzer/sanitizer runtimes, for the fuzz targets
  clang libclang-rt-14-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  # utilities the tests and demo scripts call; a Python gRPC client tests the API
  python3 jq curl python3-grpcio python3-protobuf
  # the zstd command line, which tests/bench/measure_base_delta.sh compares deltas with
  zstd
  # Jinja2, the reference the chat-template renderer is compared with byte for byte
  python3-jinja2
  # a real browser (headless) loads the aggregator's fleet page in the tests
  chromium
  # systemd-analyze verifies the unit files
  systemd
  # libfaketime (preloaded by the tests, not through the faketime wrapper):
  # the OTA tests set a daemon's clock back and forward, and backdate certificates
  libfaketime
  # the NEON kernels are cross-built for aarch64 (Jetson) and checked under qemu-user
  g++-aarch64-linux-gnu qemu-user
  # perf: tests/bench/profile_decode.sh shows where a decode step's time goes
  linux-perf
)
packages=("${build_packages[@]}")
if [ "${1:-}" != --build-only ]; then
  packages+=("${test_packages[@]}")
  # Node.js and npm run the offline checks of the deployment files (tests/deploy)
  # and the OpenAI SDK against the HTTP API (tests/clients);
  # a Node.js already installed from elsewhere (which brings its own npm) is kept.
  if ! command -v npm >/dev/null; then packages+=(nodejs npm); fi
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update
"${sudo_cmd[@]}" apt-get install -y --no-install-recommends "${packages[@]}"

# Make sure the threaded OpenBLAS is the BLAS that LibTorch loads.
blas_alt=$(update-alternatives --list libblas.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas-pthread || true)
if [ -n "$blas_alt" ]; then
  "${sudo_cmd[@]}" update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas_alt"
fi
lapack_alt=$(update-alternatives --list liblapack.so.3-x86_64-linux-gnu 2>/dev/null | grep openblas-pthread || true)
if [ -n "$lapack_alt" ]; then
  "${sudo_cmd[@]}" update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lapack_alt"
fi
