// examples/kv/command.hpp - the commands kv-server puts in the Raft log, and
// the state machine that applies them.
//
// Encoding of a command payload (varints are LEB128, as in raft/wire.hpp):
//
//   command := version:u8 (=1) op:u8 client:varint seq:varint key:blob value:blob
//
// `client` and `seq` identify a client request. client 0 means "anonymous":
// no deduplication. For a named client the state machine remembers the last
// seq it applied and that result, so a retried write (same client and seq)
// is answered from memory instead of being applied twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <raft/raft.hpp>

namespace kv {

enum class op : std::uint8_t { put = 1, get = 2, del = 3 };

[[nodiscard]] constexpr const char* to_string(op o) noexcept {
  switch (o) {
    case op::put: return "put";
    case op::get: return "get";
    case op::del: return "del";
  }
  return "?";
}

struct command {
  kv::op op = op::get;
  std::uint64_t client = 0;
  std::uint64_t seq = 0;
  std::string key;
  std::string value;  // put only
  friend bool operator==(const command&, const command&) = default;
};

inline raft::bytes encode(const command& c) {
  std::vector<std::byte> buf;
  buf.reserve(16 + c.key.size() + c.value.size());
  raft::byte_writer w(buf);
  w.u8(1);
  w.u8(static_cast<std::uint8_t>(c.op));
  w.varint(c.client);
  w.varint(c.seq);
  w.blob(c.key);
  w.blob(c.value);
  return raft::bytes(buf.data(), buf.size());
}

/// Decodes a payload; nothing if it is not a well-formed command.
inline std::optional<command> decode(std::span<const std::byte> in) {
  raft::byte_reader r(in);
  std::uint8_t version = 0, o = 0;
  command c;
  std::span<const std::byte> key, value;
  if (!r.u8(version) || version != 1 || !r.u8(o) || o < 1 || o > 3 || !r.varint(c.client) || !r.varint(c.seq) ||
      !r.blob(key) || !r.blob(value) || r.remaining() != 0)
    return std::nullopt;
  c.op = static_cast<kv::op>(o);
  c.key.assign(reinterpret_cast<const char*>(key.data()), key.size());
  c.value.assign(reinterpret_cast<const char*>(value.data()), value.size());
  return c;
}

struct result {
  enum class code : std::uint8_t { ok, not_found, duplicate } status = code::ok;
  std::string value;  // get: the value
  friend bool operator==(const result&, const result&) = default;
};

/// The replicated state: a map from key to value. Deterministic: every node
/// applying the same commands in the same order ends in the same state.
class store {
 public:
  result apply(const command& c) {
    if (c.op == op::get) {
      auto it = data_.find(c.key);
      if (it == data_.end()) return {result::code::not_found, {}};
      return {result::code::ok, it->second};
    }
    session* s = nullptr;
    if (c.client != 0) {
      s = &sessions_[c.client];
      if (c.seq == s->seq && s->seq != 0) return s->last;  // a retry of the last write: same answer
      if (c.seq < s->seq) return {result::code::duplicate, {}};
    }
    result r;
    if (c.op == op::put) {
      data_[c.key] = c.value;
    } else if (data_.erase(c.key) == 0) {
      r.status = result::code::not_found;
    }
    if (s != nullptr) {
      s->seq = c.seq;
      s->last = r;
    }
    return r;
  }

  [[nodiscard]] const std::string* find(const std::string& key) const {
    auto it = data_.find(key);
    return it == data_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] std::size_t size() const noexcept { return data_.size(); }

 private:
  struct session {
    std::uint64_t seq = 0;
    result last;
  };
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<std::uint64_t, session> sessions_;
};

}  // namespace kv
