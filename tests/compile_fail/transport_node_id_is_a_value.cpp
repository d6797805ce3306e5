// A classic slip: node_id written as a value instead of a type. The message
// must say that node_id has to be a type.
// EXPECT: raft: the Transport policy.s .node_id. is a value, not a type
#include <raft/raft.hpp>

struct my_transport {
  static constexpr int node_id = 1;  // should be: using node_id = int;
  using payload = raft::bytes;
  static void encode_id(raft::byte_writer& w, int id) { w.varint(static_cast<std::uint64_t>(id)); }
  static std::optional<int> decode_id(raft::byte_reader& r) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return std::nullopt;
    return static_cast<int>(v);
  }
  static void encode_payload(raft::byte_writer& w, const payload& p) { w.blob(p.span()); }
  static std::optional<payload> decode_payload(raft::byte_reader& r) {
    std::span<const std::byte> s;
    if (!r.blob(s)) return std::nullopt;
    return payload(s);
  }
  static std::size_t payload_size(const payload& p) { return p.size(); }
};

int main() {
  raft::node<my_transport> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
