// tests/kv/kv_catch_main.cpp - Catch2 main for the kv unit tests (kv-unit-tests).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
