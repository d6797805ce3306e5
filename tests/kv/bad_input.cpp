// tests/kv/bad_input.cpp - hostile and broken input to a running kv-server cluster.
//
//   kv-bad-input PATH-TO-kv-server
//
// Starts 3 nodes, writes a key, then throws at node 2 (a follower or the
// leader, whichever it is):
//   peer port:   a garbage handshake, a zero-length frame, an oversized frame
//                header, an unknown node id, another cluster's id, a node
//                claiming the receiver's own id, a valid handshake followed
//                by an undecodable frame, or by a frame in a newer wire
//                format version, a decodable message whose sender
//                contradicts the handshake, a handshake and a message each
//                with one bit flipped (frame checksum; counted in /status
//                bad_frames), a handshake of the previous protocol version
//                (frames without checksums);
//   client port: binary garbage, an oversized head, a huge key, a huge value
//                (refused from its Content-Length, before the body is sent),
//                a bad method, a bad percent-escape.
// Each must close (peer) or answer-and-close / answer (client) with a clear
// reason, logged by the server. Afterwards nothing else may have changed:
// same leader, same term, every process alive, the key still readable, and
// writes still work.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <raft/raft.hpp>

#include "cluster.hpp"

using kvtest::say;

namespace {

int failures = 0;
void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok  " : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) ++failures;
}

int raw_connect(const kv::endpoint& ep) { return kv::connect_with_timeout(ep, 2000); }

void send_bytes(int fd, const std::vector<std::byte>& b) { kv::write_all(fd, b.data(), b.size(), kv::now_ms() + 2000); }

std::vector<std::byte> frame(const std::vector<std::byte>& body) { return kv::make_frame(body); }

/// Reads until EOF/reset or timeout. Returns {closed, everything received}.
std::pair<bool, std::string> drain(int fd, int timeout_ms) {
  std::string got;
  const std::int64_t end = kv::now_ms() + timeout_ms;
  char buf[4096];
  while (kv::now_ms() < end) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(end - kv::now_ms())) != 1) break;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      ::close(fd);
      return {true, got};
    }
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return {false, got};
}

bool log_has(const kvtest::cluster& cl, std::uint64_t id, const std::string& s) {
  const std::int64_t end = kv::now_ms() + 2000;
  while (kv::now_ms() < end) {
    if (cl.read_log(id).find(s) != std::string::npos) return true;
    ::usleep(20000);
  }
  return false;
}

void peer_case(kvtest::cluster& cl, const std::string& name, const std::vector<std::byte>& bytes, const std::string& reason) {
  const int fd = raw_connect(cl.raft(2));
  if (fd < 0) return check(false, name + ": cannot connect");
  send_bytes(fd, bytes);
  auto [closed, got] = drain(fd, 3000);
  check(closed, name + ": connection closed by the server");
  check(got.find(reason) != std::string::npos, name + ": refusal says \"" + reason + "\" (got \"" + got + "\")");
  check(log_has(cl, 2, reason), name + ": server log says \"" + reason + "\"");
}

void client_case(kvtest::cluster& cl, const std::string& name, const std::string& request, int status,
                 const std::string& reason, bool expect_close) {
  const int fd = raw_connect(cl.http(2));
  if (fd < 0) return check(false, name + ": cannot connect");
  kv::write_all(fd, request.data(), request.size(), kv::now_ms() + 2000);
  auto [closed, got] = drain(fd, expect_close ? 3000 : 500);
  const std::string want = "HTTP/1.1 " + std::to_string(status) + " ";
  check(got.rfind(want, 0) == 0, name + ": answered " + std::to_string(status) + " (got \"" + got.substr(0, 40) + "\")");
  check(got.find(reason) != std::string::npos, name + ": the answer says \"" + reason + "\"");
  if (expect_close) check(closed, name + ": connection closed");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kv-bad-input PATH-TO-kv-server\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  kvtest::cluster cl(argv[1], 3, {"--election-ticks", "30", "--max-key", "1024", "--max-value", "65536"});
  for (std::uint64_t id = 1; id <= 3; ++id) cl.start(id);
  const std::uint64_t leader = cl.wait_leader(10000);
  if (leader == 0) {
    cl.keep_dir();
    std::printf("FAIL: no leader\n");
    return 1;
  }
  {
    kv::http_client c(cl.http(leader));
    auto r = c.request("PUT", "/kv/stable", "before", {}, 3000);
    check(r.what == kv::http_client::outcome::ok && r.resp.status == 200, "initial write");
  }
  const auto before = cl.status(2);
  say("leader %" PRIu64 ", term %" PRIu64 "; attacking node 2", leader, before ? before->term : 0);

  // ---------------------------------------------------------------- peers
  const auto garbage = std::vector<std::byte>{std::byte{0xde}, std::byte{0xad}, std::byte{0xbe}, std::byte{0xef},
                                              std::byte{0x01}, std::byte{0x02}};
  peer_case(cl, "garbage handshake", frame(garbage), "bad handshake");
  peer_case(cl, "zero-length frame", frame({}), "frame of 0 bytes is outside");
  peer_case(cl, "oversized frame", {std::byte{0x7f}, std::byte{0xff}, std::byte{0xff}, std::byte{0xff}},
            "frame of 2147483647 bytes is outside");
  peer_case(cl, "unknown node id", frame(kv::encode_handshake("e2e", 99, 2)), "unknown node id 99");
  peer_case(cl, "wrong cluster id", frame(kv::encode_handshake("other-cluster", 1, 2)), "cluster id mismatch");
  peer_case(cl, "our own id", frame(kv::encode_handshake("e2e", 2, 2)), "claims our own node id 2");
  peer_case(cl, "meant for another node", frame(kv::encode_handshake("e2e", 1, 3)), "handshake addressed to node 3");
  {
    auto b = frame(kv::encode_handshake("e2e", 3, 2));
    // our wire format version, unknown message type 0x7f
    auto g = frame({std::byte{raft::wire_format_version}, std::byte{0x7f}, std::byte{0x01}, std::byte{0x02}});
    b.insert(b.end(), g.begin(), g.end());
    peer_case(cl, "undecodable frame after a valid handshake", b, "undecodable frame of 4 bytes: unknown message type");
  }
  {
    // A well-formed vote_response of ours, but announcing wire format 7.
    raft::message<std::uint64_t, raft::bytes> m{3, 2, raft::term_t{1}, raft::vote_response{false}};
    auto b = frame(kv::encode_handshake("e2e", 3, 2));
    auto body = raft::codec<raft::default_transport>::encode(m);
    body.at(0) = std::byte{7};
    auto g = frame(body);
    b.insert(b.end(), g.begin(), g.end());
    peer_case(cl, "frame in a newer wire format after a valid handshake", b,
              "unknown wire format version: this peer speaks a newer (or corrupt) format at offset 1 (peer speaks wire "
              "format 7, we speak " + std::to_string(raft::wire_format_version) + ")");
  }
  {
    // A well-formed message whose `from` contradicts the handshake (node 3).
    raft::message<std::uint64_t, raft::bytes> m{1, 2, raft::term_t{1}, raft::vote_response{false}};
    auto b = frame(kv::encode_handshake("e2e", 3, 2));
    auto g = frame(raft::codec<raft::default_transport>::encode(m));
    b.insert(b.end(), g.begin(), g.end());
    peer_case(cl, "sender contradicts the handshake", b, "message from node 1 to node 2 on the connection of node 3");
  }
  {
    // Damaged in transit: one flipped bit in the handshake, or in a valid
    // message after a valid handshake (without the frame checksum this
    // AppendEntries still decoded, as a different message).
    const auto bad_before = cl.status(2);
    auto hs = frame(kv::encode_handshake("e2e", 3, 2));
    hs[kv::frame_header_bytes + 9] ^= std::byte{0x04};
    peer_case(cl, "handshake with a flipped bit", hs, "frame checksum mismatch");
    raft::append_request<raft::bytes> a;
    a.prev_index = raft::index_t{1};
    a.prev_term = raft::term_t{1};
    a.commit = raft::index_t{1};
    raft::message<std::uint64_t, raft::bytes> m{3, 2, raft::term_t{1}, std::move(a)};
    using codec = raft::codec<raft::default_transport>;
    const auto body = codec::encode(m);
    auto g = frame(body);
    // Flip the first bit that leaves the message decodable, from node 3 to node 2.
    bool flipped = false;
    for (std::size_t i = 0; i < body.size() * 8 && !flipped; ++i) {
      auto t = body;
      t[i / 8] ^= static_cast<std::byte>(1 << (i % 8));
      auto r = codec::decode(t, raft::codec_limits{1 << 20, 1 << 16});
      if (r && r.value->from == 3 && r.value->to == 2 && !(*r.value == m)) {
        g[kv::frame_header_bytes + i / 8] ^= static_cast<std::byte>(1 << (i % 8));
        flipped = true;
      }
    }
    if (flipped) say("a single-bit flip of that AppendEntries still decodes, as another message");
    else g.back() ^= std::byte{0x01};  // (a codec that detects every flip itself: any flip will do)
    auto b = frame(kv::encode_handshake("e2e", 3, 2));
    b.insert(b.end(), g.begin(), g.end());
    peer_case(cl, "message with a flipped bit", b, "frame checksum mismatch");
    const auto bad_after = cl.status(2);
    check(bad_before && bad_after && bad_after->bad_frames == bad_before->bad_frames + 2,
          "both damaged frames counted in /status bad_frames (" + std::to_string(bad_before ? bad_before->bad_frames : 0) +
              " -> " + std::to_string(bad_after ? bad_after->bad_frames : 0) + ")");
    // A node of the previous version (KVRAFT01, frames without a checksum) is told why.
    std::vector<std::byte> v1 = {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{14}};
    for (char ch : std::string("KVRAFT01\x03" "e2e\x03\x02")) v1.push_back(static_cast<std::byte>(ch));
    peer_case(cl, "previous protocol version", v1, "previous protocol version (KVRAFT01");
  }

  // -------------------------------------------------------------- clients
  client_case(cl, "binary garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400,
              "binary data where an HTTP request line was expected", true);
  client_case(cl, "oversized request head", "GET /kv/x HTTP/1.1\r\nX-Junk: " + std::string(10000, 'j') + "\r\n\r\n", 431,
              "request head larger than 8192 bytes", true);
  client_case(cl, "huge key", "GET /kv/" + std::string(2000, 'k') + " HTTP/1.1\r\n\r\n", 414,
              "key of 2000 bytes exceeds the limit of 1024 bytes", false);
  client_case(cl, "huge value", "PUT /kv/big HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413,
              "value of 10000000 bytes exceeds the limit of 65536 bytes", true);
  client_case(cl, "bad method", "POST /kv/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "use PUT, GET or DELETE", false);
  client_case(cl, "bad escape", "GET /kv/a%zz HTTP/1.1\r\n\r\n", 400, "malformed percent-escape", false);
  client_case(cl, "chunked body", "PUT /kv/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "chunked", true);
  check(log_has(cl, 2, "binary data where an HTTP request line"), "server log names the garbage client");

  // -------------------------------------------------------- nothing changed
  for (std::uint64_t id = 1; id <= 3; ++id) check(cl.alive(id), "node " + std::to_string(id) + " still running");
  const std::uint64_t leader_after = cl.wait_leader(5000);
  check(leader_after == leader, "same leader (" + std::to_string(leader) + " -> " + std::to_string(leader_after) + ")");
  const auto after = cl.status(2);
  check(before && after && before->term == after->term,
        "same term (" + std::to_string(before ? before->term : 0) + " -> " + std::to_string(after ? after->term : 0) + ")");
  {
    kv::http_client c(cl.http(leader_after ? leader_after : 1));
    auto r = c.request("GET", "/kv/stable", {}, {}, 3000);
    check(r.what == kv::http_client::outcome::ok && r.resp.status == 200 && r.resp.body == "before", "the key is intact");
    r = c.request("PUT", "/kv/stable", "after", {}, 3000);
    check(r.what == kv::http_client::outcome::ok && r.resp.status == 200, "writes still work");
    r = c.request("GET", "/kv/stable", {}, {}, 3000);
    check(r.what == kv::http_client::outcome::ok && r.resp.body == "after", "and read back");
  }
  // Peers reconnected fine: node 2 still gets replicated.
  {
    bool caught_up = false;
    for (int i = 0; i < 100 && !caught_up; ++i) {
      auto l = cl.status(leader_after ? leader_after : 1);
      auto s = cl.status(2);
      caught_up = l && s && s->applied == l->commit;
      if (!caught_up) ::usleep(20000);
    }
    check(caught_up, "node 2 keeps up with the leader");
  }
  for (std::uint64_t id = 1; id <= 3; ++id) cl.kill(id, SIGTERM);
  for (std::uint64_t id = 1; id <= 3; ++id) {
    auto st = cl.wait_exit(id, 5000);
    check(st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0, "node " + std::to_string(id) + " shuts down cleanly on SIGTERM");
  }
  // A sanitizer report or a fatal error in any server incarnation fails the test.
  for (std::uint64_t id = 1; id <= 3; ++id) {
    const std::string log = cl.read_log(id);
    for (const char* bad : {"runtime error:", "AddressSanitizer", "LeakSanitizer", "ThreadSanitizer", "FATAL", "raft invariant broken"})
      if (log.find(bad) != std::string::npos) check(false, "node " + std::to_string(id) + "'s log contains \"" + bad + "\"");
  }
  if (failures != 0) {
    cl.keep_dir();
    std::printf("%d check(s) failed\n", failures);
    return 1;
  }
  std::printf("all bad-input checks passed\n");
  return 0;
}
