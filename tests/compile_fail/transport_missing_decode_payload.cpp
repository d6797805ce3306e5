// A Transport that can write payloads but not read them back.
// EXPECT: raft: the Transport policy needs .static std::optional<payload> decode_payload
#include <raft/raft.hpp>

struct my_transport {
  using node_id = std::uint64_t;
  using payload = raft::bytes;
  static void encode_id(raft::byte_writer& w, node_id id) { w.varint(id); }
  static std::optional<node_id> decode_id(raft::byte_reader& r) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return std::nullopt;
    return v;
  }
  static void encode_payload(raft::byte_writer& w, const payload& p) { w.blob(p.span()); }
  // decode_payload is missing
  static std::size_t payload_size(const payload& p) { return p.size(); }
};

int main() {
  raft::node<my_transport> n({.id = 1, .voters = {1}});
  return n.is_leader() ? 0 : 1;
}
