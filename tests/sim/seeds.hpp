// tests/sim/seeds.hpp - which seeds a randomized test runs.
//
// RAFT_SIM_SEED=<n> replays exactly one seed in every simulator test;
// RAFT_SOAK_SEEDS=<n> sets how many seeds the soaks run (default 500), from
// RAFT_SOAK_FIRST_SEED (default 1000); RAFT_MEMBERSHIP_SOAK_ROUNDS=<n> sets
// the rounds of churn per seed of the membership soak (default 60).
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace sim {

inline std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return std::strtoull(v, nullptr, 10);
}

/// `count` seeds starting at `first`, or just RAFT_SIM_SEED when it is set.
inline std::vector<std::uint64_t> seeds(std::uint64_t count, std::uint64_t first = 1) {
  if (const char* v = std::getenv("RAFT_SIM_SEED"); v != nullptr && *v != '\0') return {std::strtoull(v, nullptr, 10)};
  std::vector<std::uint64_t> s;
  for (std::uint64_t i = 0; i < count; ++i) s.push_back(first + i);
  return s;
}

}  // namespace sim
