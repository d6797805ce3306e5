// Downstream consumer of an installed raftpp (CMake package / Meson subproject).
// Only checks that the umbrella header is found and compiles in C++20 mode.
#include <raft/raft.hpp>

#include <cstdio>

static_assert(__cplusplus >= 202002L, "raft::raft must require C++20");

int main() {
  std::puts("raftpp consumer: <raft/raft.hpp> OK");
  return 0;
}
