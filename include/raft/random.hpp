// raft/random.hpp - the default Random policy: a seeded SplitMix64.
#pragma once

#include <cstdint>

namespace raft {
inline namespace v0 {

/// Small, fast, deterministic. The node seeds it from config.random_seed
/// mixed with its id, so a run is replayed exactly from its seed.
class splitmix64 {
 public:
  void seed(std::uint64_t s) noexcept { state_ = s; }
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_ = 0;
};

using default_random = splitmix64;

}  // namespace v0
}  // namespace raft
