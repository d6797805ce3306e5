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
//
// Snapshot of the state machine (what kv-server hands to node.compact(), and
// restores when the node's output carries a snapshot):
//
//   snapshot := "KVST" version:u8 (=2)
//               keys:varint     (key:blob value:blob)*                  sorted by key
//               sessions:varint (client:varint seq:varint status:u8 value:blob)*  sorted by client
//               addresses:blob  (an address book, below)
//               crc32c:u32      (little-endian, of every byte before it)
// Version 1 (before membership changes) is the same without `addresses`; it
// is still restored, with an empty address book.
//
// The sessions (the at-most-once table) are part of it: a node restored from
// a snapshot must answer a retried write exactly as the node that applied it
// would. Sorted, so equal states encode to equal bytes on every node. The
// address book - where every member listens - travels with the snapshot, so a
// node that catches up by InstallSnapshot can reach members that were added
// by configuration entries it never saw.
//
// Address book (also the `context` of every configuration change kv-server
// proposes, so every node learns the addresses of added nodes from the log):
//
//   book := "KVAB" version:u8 (=1) count:varint (id:varint raft:blob client:blob)*   ids ascending
//
// raft and client are "host:port" (client may be empty: unknown).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <raft/raft.hpp>

#include "crc32c.hpp"

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

/// Where a node listens: its peer (Raft) address and its client (HTTP)
/// address, "host:port" each; client may be empty (unknown).
struct node_addresses {
  std::string raft;
  std::string client;
  friend bool operator==(const node_addresses&, const node_addresses&) = default;
};
using address_book = std::map<std::uint64_t, node_addresses>;

inline constexpr std::size_t max_address_bytes = 255;

/// Writes a four-letter magic byte by byte (g++ 12 -O3 warns falsely about
/// a 4-byte insert into an empty vector).
inline void write_magic(raft::byte_writer& w, std::string_view magic) {
  for (char c : magic) w.u8(static_cast<std::uint8_t>(c));
}

inline void write_address_book(raft::byte_writer& w, const address_book& book) {
  write_magic(w, "KVAB");
  w.u8(1);
  w.varint(book.size());
  for (const auto& [id, a] : book) {
    w.varint(id);
    w.blob(a.raft);
    w.blob(a.client);
  }
}

inline raft::bytes encode_address_book(const address_book& book) {
  std::vector<std::byte> buf;
  raft::byte_writer w(buf);
  write_address_book(w, book);
  return raft::bytes(buf.data(), buf.size());
}

/// Decodes what encode_address_book wrote; nothing if it is damaged: wrong
/// magic or version, an id of 0 or out of order, an empty or oversized
/// address, more than raft::max_members entries, trailing bytes.
inline std::optional<address_book> decode_address_book(std::span<const std::byte> in) {
  if (in.size() < 5 || std::memcmp(in.data(), "KVAB", 4) != 0 || static_cast<std::uint8_t>(in[4]) != 1)
    return std::nullopt;
  raft::byte_reader r(in.subspan(5));
  std::uint64_t n = 0;
  if (!r.varint(n) || n > raft::max_members) return std::nullopt;
  address_book book;
  std::uint64_t prev = 0;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::uint64_t id = 0;
    std::span<const std::byte> raft_addr, client_addr;
    if (!r.varint(id) || id <= prev || !r.blob(raft_addr, max_address_bytes) || !r.blob(client_addr, max_address_bytes) ||
        raft_addr.empty())
      return std::nullopt;
    prev = id;
    book[id] = node_addresses{std::string(reinterpret_cast<const char*>(raft_addr.data()), raft_addr.size()),
                              std::string(reinterpret_cast<const char*>(client_addr.data()), client_addr.size())};
  }
  if (!r.ok() || r.remaining() != 0) return std::nullopt;
  return book;
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
  /// Clients whose last request is remembered.
  [[nodiscard]] std::size_t sessions() const noexcept { return sessions_.size(); }

  static constexpr std::uint8_t snapshot_version = 2;

  /// The whole state, keys and sessions, and `book` (where the members
  /// listen), in the format described at the top.
  [[nodiscard]] raft::bytes snapshot(const address_book& book = {}) const {
    std::vector<const std::pair<const std::string, std::string>*> kvs;
    kvs.reserve(data_.size());
    std::size_t total = 16;
    for (const auto& kv : data_) {
      kvs.push_back(&kv);
      total += kv.first.size() + kv.second.size() + 8;
    }
    std::sort(kvs.begin(), kvs.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
    std::vector<std::pair<std::uint64_t, const session*>> ss;
    ss.reserve(sessions_.size());
    for (const auto& [client, s] : sessions_) {
      ss.emplace_back(client, &s);
      total += s.last.value.size() + 24;
    }
    std::sort(ss.begin(), ss.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    // The magic is copied in place, not appended with byte_writer::raw():
    // GCC 12 at -O3 sees the insert() into the freshly reserved vector and
    // warns, falsely, that it overflows (-Wstringop-overflow).
    std::vector<std::byte> buf(4);
    buf.reserve(total);
    std::memcpy(buf.data(), "KVST", 4);
    raft::byte_writer w(buf);
    w.u8(snapshot_version);
    w.varint(kvs.size());
    for (const auto* kv : kvs) {
      w.blob(kv->first);
      w.blob(kv->second);
    }
    w.varint(ss.size());
    for (const auto& [client, s] : ss) {
      w.varint(client);
      w.varint(s->seq);
      w.u8(static_cast<std::uint8_t>(s->last.status));
      w.blob(s->last.value);
    }
    w.blob(encode_address_book(book).span());
    const std::uint32_t crc = crc32c(buf.data(), buf.size());
    for (int i = 0; i < 4; ++i) w.u8(static_cast<std::uint8_t>(crc >> (8 * i)));
    return raft::bytes(buf.data(), buf.size());
  }

  /// Replaces the whole state with a snapshot made by snapshot(), and `book`
  /// (if given) with its address book (empty for a version-1 snapshot). On a
  /// malformed snapshot the store and `book` are left unchanged and the
  /// reason returned.
  std::optional<std::string> restore(std::span<const std::byte> in, address_book* book = nullptr) {
    if (in.size() < 9) return "snapshot of " + std::to_string(in.size()) + " bytes is too short";
    const std::size_t body = in.size() - 4;
    std::uint32_t want = 0;
    for (int i = 3; i >= 0; --i) want = (want << 8) | static_cast<std::uint32_t>(in[body + static_cast<std::size_t>(i)]);
    if (crc32c(in.data(), body) != want) return "snapshot checksum mismatch";
    if (std::memcmp(in.data(), "KVST", 4) != 0) return "not a kv store snapshot (bad magic)";
    const auto version = static_cast<std::uint8_t>(in[4]);
    if (version != 1 && version != snapshot_version)
      return "unknown snapshot version " + std::to_string(static_cast<unsigned>(in[4]));
    raft::byte_reader r(in.subspan(5, body - 5));
    std::unordered_map<std::string, std::string> data;
    std::unordered_map<std::uint64_t, session> sessions;
    std::uint64_t n = 0;
    if (!r.varint(n)) return "truncated key count";
    for (std::uint64_t i = 0; i < n; ++i) {
      std::span<const std::byte> k, v;
      if (!r.blob(k) || !r.blob(v)) return "truncated key/value " + std::to_string(i);
      auto [it, fresh] = data.try_emplace(std::string(reinterpret_cast<const char*>(k.data()), k.size()),
                                          reinterpret_cast<const char*>(v.data()), v.size());
      if (!fresh) return "duplicate key in snapshot";
    }
    if (!r.varint(n)) return "truncated session count";
    for (std::uint64_t i = 0; i < n; ++i) {
      std::uint64_t client = 0;
      session s;
      std::uint8_t status = 0;
      std::span<const std::byte> v;
      if (!r.varint(client) || !r.varint(s.seq) || !r.u8(status) || !r.blob(v)) return "truncated session " + std::to_string(i);
      if (client == 0 || status > static_cast<std::uint8_t>(result::code::duplicate)) return "bad session " + std::to_string(i);
      s.last.status = static_cast<result::code>(status);
      s.last.value.assign(reinterpret_cast<const char*>(v.data()), v.size());
      if (!sessions.emplace(client, std::move(s)).second) return "duplicate session in snapshot";
    }
    address_book addresses;
    if (version >= 2) {
      std::span<const std::byte> b;
      if (!r.blob(b)) return "truncated address book";
      auto decoded = decode_address_book(b);
      if (!decoded) return "damaged address book";
      addresses = std::move(*decoded);
    }
    if (r.remaining() != 0) return std::to_string(r.remaining()) + " trailing bytes in snapshot";
    data_ = std::move(data);
    sessions_ = std::move(sessions);
    if (book != nullptr) *book = std::move(addresses);
    return std::nullopt;
  }

  friend bool operator==(const store& a, const store& b) {
    return a.data_ == b.data_ && a.sessions_ == b.sessions_;
  }

 private:
  struct session {
    std::uint64_t seq = 0;
    result last;
    friend bool operator==(const session&, const session&) = default;
  };
  std::unordered_map<std::string, std::string> data_;
  std::unordered_map<std::uint64_t, session> sessions_;
};

}  // namespace kv
