// raft/raft.hpp - the umbrella header: include this one.
//
//   #include <raft/raft.hpp>
//   using node = raft::node<>;   // default_transport, memory_log, tick_clock, splitmix64
//
// Headers by concern:
//   types.hpp       term_t, index_t, role          message.hpp   entries, messages, hard_state
//   config.hpp      config + validate()            output.hpp    what a call produced
//   concepts.hpp    the four policy concepts       node.hpp      the Raft state machine
//   progress.hpp    per-follower replication       quorum.hpp    quorum rules (joint too)
//   codec.hpp       binary wire format             wire.hpp      bounds-checked primitives
//   transport.hpp   default Transport              memory_log.hpp default Log
//   clock.hpp       default Clock                  random.hpp    default Random
//   bytes.hpp       shared immutable payload       assert.hpp    RAFT_ASSERT
//   tracker.hpp     the leader's peers, by node id status.hpp    node::status() values
//   trace.hpp       the optional event hook (Trace policy)
// The node's rules, one file per concern (included by node.hpp):
//   detail/term_rules.hpp   step() and the §5.1 term rules     detail/validation.hpp   message shape checks
//   detail/election.hpp     timeouts, campaigns, votes         detail/replication.hpp  leader: send, ack, commit
//   detail/follower_append.hpp  consistency check, truncation  detail/snapshot_transfer.hpp  compaction, InstallSnapshot
//   detail/durability.hpp   Log writes, persisted(), held acknowledgements
//   detail/leadership.hpp   transfer, forwarding, back-pressure, reports, status()
//   detail/reads.hpp        ReadIndex and leases over heartbeat rounds
#pragma once

#include "assert.hpp"
#include "bytes.hpp"
#include "clock.hpp"
#include "codec.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "memory_log.hpp"
#include "message.hpp"
#include "node.hpp"
#include "output.hpp"
#include "progress.hpp"
#include "quorum.hpp"
#include "random.hpp"
#include "status.hpp"
#include "trace.hpp"
#include "tracker.hpp"
#include "transport.hpp"
#include "types.hpp"
#include "wire.hpp"
