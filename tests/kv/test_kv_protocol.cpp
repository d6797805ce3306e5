// tests/kv/test_kv_protocol.cpp - the command codec, the state machine, the
// HTTP request parser, the peer handshake and peer frames (with their
// checksum), including hostile input.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "command.hpp"
#include "http.hpp"
#include "net.hpp"

TEST_CASE("command: encode/decode round trip", "[kv][command]") {
  const kv::command cmds[] = {
      {kv::op::put, 7, 9, "key", "value"},
      {kv::op::get, 0, 0, "k", ""},
      {kv::op::del, 1, 1, std::string(1024, 'x'), ""},
      {kv::op::put, 0, 0, std::string("a\0b", 3), std::string(100000, '\xff')},
  };
  for (const auto& c : cmds) {
    auto b = kv::encode(c);
    auto back = kv::decode(b.span());
    REQUIRE(back);
    CHECK(*back == c);
  }
}

TEST_CASE("command: garbage never decodes into a command it was not", "[kv][command]") {
  const auto good = kv::encode({kv::op::put, 7, 9, "key", "value"});
  std::vector<std::byte> b(good.data(), good.data() + good.size());
  for (std::size_t n = 0; n < b.size(); ++n) CHECK_FALSE(kv::decode(std::span(b.data(), n)));  // truncated
  auto extra = b;
  extra.push_back(std::byte{0});
  CHECK_FALSE(kv::decode(extra));  // trailing byte
  auto bad_op = b;
  bad_op[1] = std::byte{9};
  CHECK_FALSE(kv::decode(bad_op));
  auto bad_version = b;
  bad_version[0] = std::byte{2};
  CHECK_FALSE(kv::decode(bad_version));
  const std::uint64_t seed = 20240601;
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 2000; ++i) {
    std::vector<std::byte> junk(rng() % 40);
    for (auto& x : junk) x = static_cast<std::byte>(rng());
    if (auto c = kv::decode(junk)) CHECK(kv::decode(kv::encode(*c).span()) == c);  // decodable junk round-trips
  }
}

TEST_CASE("store: apply, and deduplication of retried writes", "[kv][command]") {
  kv::store s;
  using st = kv::result::code;
  CHECK(s.apply({kv::op::get, 0, 0, "a", ""}).status == st::not_found);
  CHECK(s.apply({kv::op::put, 0, 0, "a", "1"}).status == st::ok);
  CHECK(s.apply({kv::op::get, 0, 0, "a", ""}) == kv::result{st::ok, "1"});
  CHECK(s.apply({kv::op::del, 0, 0, "a", ""}).status == st::ok);
  CHECK(s.apply({kv::op::del, 0, 0, "a", ""}).status == st::not_found);
  // Client 5 writes seq 1, then a retry of seq 1 arrives after someone else wrote.
  CHECK(s.apply({kv::op::put, 5, 1, "k", "mine"}).status == st::ok);
  CHECK(s.apply({kv::op::put, 0, 0, "k", "theirs"}).status == st::ok);
  CHECK(s.apply({kv::op::put, 5, 1, "k", "mine"}).status == st::ok);  // same answer...
  CHECK(*s.find("k") == "theirs");                                     // ...not applied twice
  CHECK(s.apply({kv::op::del, 5, 2, "k", ""}).status == st::ok);
  CHECK(s.apply({kv::op::del, 5, 2, "k", ""}).status == st::ok);  // retry of a delete: still "deleted"
  CHECK(s.apply({kv::op::put, 5, 1, "k", "old"}).status == st::duplicate);
  CHECK(s.find("k") == nullptr);
}

TEST_CASE("store: snapshot and restore keep the data and the dedup table", "[kv][command][snapshot]") {
  using st = kv::result::code;
  kv::store a;
  a.apply({kv::op::put, 0, 0, "x", "1"});
  a.apply({kv::op::put, 3, 1, "y", std::string(5000, 'y')});
  a.apply({kv::op::put, 4, 7, std::string("n\0ul", 4), ""});
  a.apply({kv::op::del, 3, 2, "nope", ""});  // not_found is remembered as client 3's last answer
  const raft::bytes snap = a.snapshot();
  kv::store b;
  b.apply({kv::op::put, 0, 0, "stale", "gone after restore"});
  REQUIRE_FALSE(b.restore(snap.span()));
  CHECK(b == a);
  CHECK(b.size() == 3);
  CHECK(b.sessions() == 2);
  CHECK(b.find("stale") == nullptr);
  CHECK(*b.find("y") == std::string(5000, 'y'));
  // The restored node answers retries exactly like the one that applied them.
  CHECK(b.apply({kv::op::del, 3, 2, "nope", ""}).status == st::not_found);  // retry of the last request
  CHECK(b.apply({kv::op::put, 3, 1, "y", "again"}).status == st::duplicate);  // older than the last
  CHECK(*b.find("y") == std::string(5000, 'y'));
  CHECK(b.apply({kv::op::put, 4, 7, "other", "v"}).status == st::ok);  // retry: not applied again
  CHECK(b.find("other") == nullptr);
  // An empty store round-trips too.
  kv::store e, e2;
  e2.apply({kv::op::put, 0, 0, "k", "v"});
  REQUIRE_FALSE(e2.restore(e.snapshot().span()));
  CHECK(e2 == e);
  CHECK(e2.size() == 0);
}

TEST_CASE("store: the snapshot carries the address book; version-1 snapshots still restore", "[kv][command][snapshot]") {
  kv::store a;
  a.apply({kv::op::put, 0, 0, "x", "1"});
  const kv::address_book book = {{1, {"127.0.0.1:7001", "127.0.0.1:8001"}},
                                 {4, {"10.0.0.4:7004", ""}},
                                 {17, {"host-17:7017", "host-17:8017"}}};
  const raft::bytes snap = a.snapshot(book);
  kv::store b;
  kv::address_book got = {{9, {"stale:1", "stale:2"}}};
  REQUIRE_FALSE(b.restore(snap.span(), &got));
  CHECK(b == a);
  CHECK(got == book);
  // The address book alone: round trip, and damage refused.
  const raft::bytes enc = kv::encode_address_book(book);
  auto dec = kv::decode_address_book(enc.span());
  REQUIRE(dec);
  CHECK(*dec == book);
  std::vector<std::byte> eb(enc.data(), enc.data() + enc.size());
  for (std::size_t n = 0; n < eb.size(); ++n) CHECK_FALSE(kv::decode_address_book(std::span(eb.data(), n)));
  auto trailing = eb;
  trailing.push_back(std::byte{0});
  CHECK_FALSE(kv::decode_address_book(trailing));
  {
    // ids out of order (or repeated) are refused
    std::vector<std::byte> buf;
    raft::byte_writer w(buf);
    kv::write_magic(w, "KVAB");
    w.u8(1);
    w.varint(2);
    w.varint(5);
    w.blob(std::string_view("a:1"));
    w.blob(std::string_view(""));
    w.varint(5);
    w.blob(std::string_view("b:1"));
    w.blob(std::string_view(""));
    CHECK_FALSE(kv::decode_address_book(buf));
  }
  // A version-1 snapshot (no address book): the store restores, the book is empty.
  std::vector<std::byte> v1;
  {
    raft::byte_writer w(v1);
    kv::write_magic(w, "KVST");
    w.u8(1);
    w.varint(1);
    w.blob(std::string_view("x"));
    w.blob(std::string_view("1"));
    w.varint(0);
    const std::uint32_t crc = kv::crc32c(v1.data(), v1.size());
    for (int i = 0; i < 4; ++i) w.u8(static_cast<std::uint8_t>(crc >> (8 * i)));
  }
  kv::store c;
  kv::address_book none = book;
  REQUIRE_FALSE(c.restore(v1, &none));
  CHECK(c == a);
  CHECK(none.empty());
}

TEST_CASE("store: equal states give equal snapshots, whatever the order of writes", "[kv][command][snapshot]") {
  const std::uint64_t seed = 77;
  CAPTURE(seed);
  std::mt19937_64 rng(seed);
  std::vector<kv::command> cmds;
  // std::string(...).append(): `"key" + std::to_string(i)` trips a false
  // -Wrestrict in GCC 12 at -O3.
  for (int i = 0; i < 300; ++i)
    cmds.push_back({kv::op::put, 0, 0, std::string("key").append(std::to_string(i)), std::to_string(rng())});
  for (std::uint64_t c = 1; c <= 40; ++c)
    cmds.push_back({kv::op::put, c, c * 3, std::string("s").append(std::to_string(c)), "v"});
  kv::store a, b;
  for (const auto& c : cmds) a.apply(c);
  std::shuffle(cmds.begin(), cmds.end(), rng);
  for (const auto& c : cmds) b.apply(c);
  REQUIRE(a == b);
  CHECK(a.snapshot() == b.snapshot());
}

TEST_CASE("store: a damaged snapshot is refused and leaves the store alone", "[kv][command][snapshot]") {
  kv::store a;
  a.apply({kv::op::put, 0, 0, "alpha", "1"});
  a.apply({kv::op::put, 9, 4, "beta", "22"});
  const raft::bytes good = a.snapshot();
  std::vector<std::byte> b(good.data(), good.data() + good.size());
  kv::store victim;
  victim.apply({kv::op::put, 0, 0, "mine", "stays"});
  const kv::store before = victim;
  for (std::size_t i = 0; i < b.size(); ++i) {  // every single-bit flip
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = b;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      CAPTURE(i, bit);
      CHECK(victim.restore(bad));
    }
  }
  for (std::size_t n = 0; n < b.size(); ++n) CHECK(victim.restore(std::span(b.data(), n)));  // truncated
  auto extra = b;
  extra.push_back(std::byte{0});
  CHECK(victim.restore(extra));
  CHECK(victim == before);
  // A well-formed snapshot of an unknown version (checksum fixed up) is refused by name.
  auto v3 = b;
  v3[4] = std::byte{3};
  const std::uint32_t crc = kv::crc32c(v3.data(), v3.size() - 4);
  for (int k = 0; k < 4; ++k) v3[v3.size() - 4 + static_cast<std::size_t>(k)] = static_cast<std::byte>(crc >> (8 * k));
  auto why = victim.restore(v3);
  REQUIRE(why);
  CHECK(why->find("version") != std::string::npos);
  CHECK(victim == before);
  REQUIRE_FALSE(victim.restore(b));
  CHECK(victim == a);
}

TEST_CASE("http: requests parse incrementally", "[kv][http]") {
  const kv::http_limits lim{8192, 100};
  const std::string req = "PUT /kv/a%20b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  for (std::size_t n = 0; n < req.size(); ++n) CHECK(kv::parse_http_request(req.substr(0, n), lim).st == kv::http_parse::state::incomplete);
  auto p = kv::parse_http_request(req + "GET /status HTTP/1.1\r\n\r\n", lim);
  REQUIRE(p.st == kv::http_parse::state::complete);
  CHECK(p.req.method == "PUT");
  CHECK(p.req.target == "/kv/a%20b");
  CHECK(p.req.body == "hello");
  CHECK(p.consumed == req.size());
  CHECK(p.req.keep_alive);
  CHECK(kv::percent_decode("a%20b") == std::optional<std::string>("a b"));
  CHECK_FALSE(kv::percent_decode("a%2"));
  CHECK(kv::percent_decode(kv::percent_encode("x/y z\xff")) == std::optional<std::string>("x/y z\xff"));
  auto c = kv::parse_http_request("PUT /kv/a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 50\r\n\r\n", lim);
  CHECK(c.st == kv::http_parse::state::incomplete);
  CHECK(c.expect_continue);
}

TEST_CASE("http: bad requests get a clear error", "[kv][http]") {
  const kv::http_limits lim{8192, 100};
  auto err = [&](const std::string& in) { return kv::parse_http_request(in, lim); };
  CHECK(err(std::string("\x16\x03\x01\x02\x00", 5)).status == 400);  // a TLS hello
  CHECK(err("HELLO\r\n\r\n").status == 400);
  CHECK(err("GET /kv/a HTTP/2.0\r\n\r\n").status == 400);
  CHECK(err("GET kv HTTP/1.1\r\n\r\n").status == 400);
  CHECK(err("GET /kv/a HTTP/1.1\r\nno colon\r\n\r\n").status == 400);
  CHECK(err("PUT /kv/a HTTP/1.1\r\nContent-Length: x\r\n\r\n").status == 400);
  CHECK(err("PUT /kv/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").status == 411);
  auto big = err("PUT /kv/a HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
  CHECK(big.status == 413);
  CHECK(big.reason.find("101 bytes exceeds the limit of 100") != std::string::npos);
  CHECK(err("GET /" + std::string(9000, 'k')).status == 431);
}

TEST_CASE("handshake: round trip and rejection of junk", "[kv][handshake]") {
  auto h = kv::encode_handshake("prod", 2, 3);
  auto d = kv::decode_handshake(h);
  REQUIRE(d);
  CHECK(d->cluster == "prod");
  CHECK(d->from == 2);
  CHECK(d->to == 3);
  for (std::size_t n = 0; n < h.size(); ++n) CHECK_FALSE(kv::decode_handshake(std::span(h.data(), n)));
  h.push_back(std::byte{0});
  CHECK_FALSE(kv::decode_handshake(h));
  // With the dialler's addresses (KVRAFT03), and the older KVRAFT02 form.
  auto h3 = kv::encode_handshake("prod", 4, 1, "127.0.0.1:7004", "127.0.0.1:8004");
  auto d3 = kv::decode_handshake(h3);
  REQUIRE(d3);
  CHECK(d3->from == 4);
  CHECK(d3->raft_addr == "127.0.0.1:7004");
  CHECK(d3->client_addr == "127.0.0.1:8004");
  for (std::size_t n = 0; n < h3.size(); ++n) CHECK_FALSE(kv::decode_handshake(std::span(h3.data(), n)));
  std::vector<std::byte> v2;
  for (char ch : std::string("KVRAFT02\x04prod\x02\x03")) v2.push_back(static_cast<std::byte>(ch));
  auto d2 = kv::decode_handshake(v2);
  REQUIRE(d2);
  CHECK(d2->cluster == "prod");
  CHECK(d2->from == 2);
  CHECK(d2->to == 3);
  CHECK(d2->raft_addr.empty());
  auto m = kv::parse_id_map("1=127.0.0.1:7001,2=localhost:7002");
  REQUIRE(m);
  CHECK(m->at(2).port == 7002);
  CHECK_FALSE(kv::parse_id_map("1=127.0.0.1:7001,1=127.0.0.1:7002"));
  CHECK_FALSE(kv::parse_id_map("x=127.0.0.1:7001"));
  CHECK_FALSE(kv::parse_id_map("1=127.0.0.1:99999"));
}

namespace {
/// A realistic peer message: an AppendEntries carrying two commands.
std::vector<std::byte> append_frame_bytes() {
  raft::append_request<raft::bytes> a;
  a.prev_index = raft::index_t{41};
  a.prev_term = raft::term_t{3};
  a.commit = raft::index_t{40};
  for (std::uint64_t i = 0; i < 2; ++i) {
    raft::entry<raft::bytes> e;
    e.term = raft::term_t{3};
    e.index = raft::index_t{42 + i};
    e.data = kv::encode({kv::op::put, 7, 9 + i, "key" + std::to_string(i), "value"});
    a.entries.push_back(std::move(e));
  }
  raft::message<std::uint64_t, raft::bytes> m{1, 2, raft::term_t{3}, std::move(a)};
  return kv::make_frame(raft::codec<raft::default_transport>::encode(m));
}
}  // namespace

TEST_CASE("peer frames: round trip, incremental, several in a row", "[kv][frame]") {
  const auto f = append_frame_bytes();
  const auto body = std::span<const std::byte>(f).subspan(kv::frame_header_bytes);
  auto p = kv::parse_frame(f, 1 << 20);
  REQUIRE(p.st == kv::frame_parse::state::ok);
  CHECK(p.size == f.size());
  CHECK(p.length == body.size());
  CHECK(std::equal(p.body.begin(), p.body.end(), body.begin(), body.end()));
  CHECK(raft::codec<raft::default_transport>::decode(p.body, raft::codec_limits{1 << 20, 1 << 16}));
  for (std::size_t n = 0; n < f.size(); ++n)
    CHECK(kv::parse_frame(std::span(f.data(), n), 1 << 20).st == kv::frame_parse::state::incomplete);
  auto two = f;
  kv::append_frame(two, kv::encode_handshake("c", 1, 2));
  auto q = kv::parse_frame(std::span<const std::byte>(two).subspan(p.size), 1 << 20);
  REQUIRE(q.st == kv::frame_parse::state::ok);
  CHECK(kv::decode_handshake(q.body));
  // Length limits are checked from the first 4 bytes.
  CHECK(kv::parse_frame(f, static_cast<std::uint32_t>(body.size() - 1)).st == kv::frame_parse::state::bad_length);
  const std::vector<std::byte> zero(kv::frame_header_bytes, std::byte{0});
  CHECK(kv::parse_frame(zero, 1 << 20).st == kv::frame_parse::state::bad_length);
}

TEST_CASE("peer frames: no single-bit flip anywhere in a frame is accepted", "[kv][frame]") {
  const auto f = append_frame_bytes();
  const auto body = std::vector<std::byte>(f.begin() + kv::frame_header_bytes, f.end());
  const raft::codec_limits lim{1 << 20, 1 << 16};
  std::size_t decodable_without_crc = 0, bits = 0;
  for (std::size_t i = 0; i < f.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto bad = f;
      bad[i] ^= static_cast<std::byte>(1 << bit);
      ++bits;
      CAPTURE(i, bit);
      const auto p = kv::parse_frame(bad, 1 << 20);
      // Refused - or, when the flip made the length larger, still waiting for
      // bytes that will then fail the checksum - but never handed out.
      CHECK(p.st != kv::frame_parse::state::ok);
      if (i >= kv::frame_header_bytes) {
        auto b = body;
        b[i - kv::frame_header_bytes] ^= static_cast<std::byte>(1 << bit);
        if (raft::codec<raft::default_transport>::decode(b, lim)) ++decodable_without_crc;
      }
    }
  }
  // What the checksum is for: without it, many flips in the body (about 85%
  // with the codec of this writing) still decode, as another valid message.
  INFO(decodable_without_crc << " of " << bits << " flips decode without the frame checksum");
  CHECK(decodable_without_crc > 0);
  // A frame whose length changed is refused once the bytes it claims are there.
  auto longer = f;
  longer[3] ^= std::byte{1};  // the length is one more or one less
  longer.push_back(std::byte{0});
  longer.push_back(std::byte{0});
  const auto p = kv::parse_frame(longer, 1 << 20);
  CHECK(p.st == kv::frame_parse::state::bad_checksum);
}

TEST_CASE("peer frames: a handshake of the previous protocol version is recognised", "[kv][frame][handshake]") {
  std::vector<std::byte> v1 = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{12}};
  for (char c : std::string("KVRAFT01")) v1.push_back(static_cast<std::byte>(c));
  CHECK(kv::is_v1_handshake(v1));
  CHECK_FALSE(kv::is_v1_handshake(kv::make_frame(kv::encode_handshake("c", 1, 2))));
}
