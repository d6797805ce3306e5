// The Catch2 v2 runner (main()).  Compiled ONCE into the static library
// raftpp_catch_main and linked into raft_tests; put no tests here.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
