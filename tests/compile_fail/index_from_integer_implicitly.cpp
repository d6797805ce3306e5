// index_t's constructor is explicit: an integer does not silently become a
// log index. Write raft::index_t{5}.
// EXPECT: (conversion from .int. to non-scalar type|no viable conversion from .int. to).*index_t
#include <raft/raft.hpp>

int main() {
  raft::index_t i = 5;
  return i == raft::index_t{5} ? 0 : 1;
}
