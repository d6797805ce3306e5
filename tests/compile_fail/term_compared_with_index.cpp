// Terms and log indexes are distinct types: comparing one with the other is
// the classic Raft slip (prev_term where prev_index was meant), and must not
// compile.
// EXPECT: (no match for .operator<.|invalid operands to binary expression).*term_t.*index_t
#include <raft/raft.hpp>

int main() {
  raft::term_t last_term{3};
  raft::index_t last_index{4};
  return last_term < last_index ? 0 : 1;
}
