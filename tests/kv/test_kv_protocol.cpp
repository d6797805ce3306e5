// tests/kv/test_kv_protocol.cpp - the command codec, the state machine, the
// HTTP request parser and the peer handshake, including hostile input.
#include <catch2/catch.hpp>

#include <random>

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
  auto m = kv::parse_id_map("1=127.0.0.1:7001,2=localhost:7002");
  REQUIRE(m);
  CHECK(m->at(2).port == 7002);
  CHECK_FALSE(kv::parse_id_map("1=127.0.0.1:7001,1=127.0.0.1:7002"));
  CHECK_FALSE(kv::parse_id_map("x=127.0.0.1:7001"));
  CHECK_FALSE(kv::parse_id_map("1=127.0.0.1:99999"));
}
