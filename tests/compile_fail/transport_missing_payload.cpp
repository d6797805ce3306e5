// A Transport without `using payload = ...;` (the command type).
// EXPECT: raft: the Transport policy has no member type .payload.
#include <raft/raft.hpp>

struct my_transport {
  using node_id = std::uint64_t;
  static void encode_id(raft::byte_writer& w, node_id id) { w.varint(id); }
  static std::optional<node_id> decode_id(raft::byte_reader& r) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return std::nullopt;
    return v;
  }
  static void encode_payload(raft::byte_writer& w, const raft::bytes& p) { w.blob(p.span()); }
  static std::optional<raft::bytes> decode_payload(raft::byte_reader& r) {
    std::span<const std::byte> s;
    if (!r.blob(s)) return std::nullopt;
    return raft::bytes(s);
  }
  static std::size_t payload_size(const raft::bytes& p) { return p.size(); }
};

int main() {
  raft::node<my_transport> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
