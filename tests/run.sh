#!/bin/sh
# THE test command:   tests/run.sh [extra ctest args...]
#
# Configures raftpp with CMake (Ninja, Debug, -DRAFT_WERROR=ON) into build/,
# builds everything, and runs the whole suite:
#   ctest --test-dir build --output-on-failure -j2 [extra ctest args...]
# Examples:
#   tests/run.sh                      # everything
#   tests/run.sh -L unit              # only the unit suite
#   tests/run.sh -R compile_fail      # only compile-fail tests
#   RAFT_SOAK_SEEDS=5000 tests/run.sh -L soak
# Environment knobs (all optional):
#   BUILD_DIR (default build), BUILD_TYPE (default Debug), JOBS (default 2),
#   CXX (compiler, read on first configure only), RAFT_CMAKE_ARGS (extra
#   configure args, word-split), RAFT_SOAK_SEEDS (soak seeds, default 500).
# Needs cmake, a C++20 compiler and Catch2 v2 (Debian package `catch2`);
# when run as root it apt-get installs what is missing.
set -eu

cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-Debug}
JOBS=${JOBS:-2}

is_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
  echo "tests/run.sh: installing Debian package(s): $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@" \
    || { apt-get -o DPkg::Lock::Timeout=900 update && apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "$@"; }
}

have_catch2() {
  # Header reachable by the compiler, and CMake package config present.
  cxx=${CXX:-c++}
  printf '#include <catch2/catch.hpp>\n' | "$cxx" -x c++ -std=c++20 -E - >/dev/null 2>&1 || return 1
  for d in /usr/lib/cmake/Catch2 /usr/share/cmake/Catch2 /usr/local/lib/cmake/Catch2 \
           /usr/local/share/cmake/Catch2 /usr/lib/*/cmake/Catch2; do
    [ -f "$d/Catch2Config.cmake" ] && return 0
  done
  # Somewhere else (CMAKE_PREFIX_PATH, ...): let CMake decide.
  [ -n "${CMAKE_PREFIX_PATH:-}" ]
}

missing=""
command -v cmake >/dev/null 2>&1 || missing="$missing cmake"
command -v "${CXX:-c++}" >/dev/null 2>&1 || missing="$missing g++"
if [ -n "$missing" ] && is_root && command -v apt-get >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  apt_install $missing
fi
if ! command -v ninja >/dev/null 2>&1 && is_root && command -v apt-get >/dev/null 2>&1; then
  apt_install ninja-build || true
fi
if ! have_catch2; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    apt_install catch2
  fi
  if ! have_catch2; then
    echo "tests/run.sh: Catch2 v2 is not installed." >&2
    echo "  Install the Debian package 'catch2':  sudo apt-get install catch2" >&2
    exit 1
  fi
fi

gen_args=""
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ] && command -v ninja >/dev/null 2>&1; then
  gen_args="-G Ninja"
fi

# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" $gen_args \
  -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
  -DRAFT_BUILD_TESTS=ON \
  -DRAFT_WERROR=ON \
  ${RAFT_CMAKE_ARGS:-}
cmake --build "$BUILD_DIR" -j "$JOBS"
exec ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" "$@"
