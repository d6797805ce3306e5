// A Transport without `using node_id = ...;` must be refused with a message
// that names the missing member and shows how to declare it.
// EXPECT: raft: the Transport policy has no member type .node_id.
#include <raft/raft.hpp>

struct my_transport {
  using payload = raft::bytes;
  static void encode_id(raft::byte_writer& w, std::uint64_t id) { w.varint(id); }
  static std::optional<std::uint64_t> decode_id(raft::byte_reader& r) {
    std::uint64_t v = 0;
    if (!r.varint(v)) return std::nullopt;
    return v;
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
