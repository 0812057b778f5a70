// core/membership.hpp — configurations: their one byte encoding, their
// validity, and the two steps of a change.
//
// A configuration is a log entry (EntryType::membership) whose payload is
// encode_membership(); snapshots carry the configuration as of their index
// in the same encoding (the WAL, the snapshot files and the wire all embed
// these bytes), so there is one format to keep compatible, here.
//
// A change of the voter set goes through joint consensus (thesis §4.3):
// the leader appends enter_joint(current, target), in which decisions need
// a majority of the old voters AND of the new; once that entry is applied
// it appends leave_joint(), the target itself. Changes of learners, staging
// servers or addresses alone need no joint step (they change no majority).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "raftkit/types.hpp"

namespace raftkit::core {

/// Every node named anywhere in `m`, sorted, once each.
std::vector<NodeId> members_of(const Membership& m);
/// Whether `id` counts toward some majority of `m` (incoming or outgoing),
/// in whatever incarnation.
bool is_voter(const Membership& m, NodeId id);
/// Whether incarnation `incarnation` of `id` counts toward some majority of `m`.
bool is_voter(const Membership& m, NodeId id, std::uint64_t incarnation);
/// Names incarnation `incarnation` of `id` in the incoming (or `outgoing`)
/// side of `m`; kBootstrapIncarnation is the default and is not listed, so
/// equal configurations compare equal.
void set_incarnation(Membership& m, NodeId id, std::uint64_t incarnation, bool outgoing = false);
/// Whether `a` and `b` (neither joint) have the same voters in the same
/// incarnations: a change between them moves no majority.
bool same_voters(const Membership& a, const Membership& b);
/// Whether `id` is named anywhere in `m`.
bool is_member(const Membership& m, NodeId id);

/// Empty if `m` is a well-formed configuration; otherwise what is wrong.
/// Used on every configuration that arrives from the network or a disk.
std::string membership_problem(const Membership& m);

Bytes encode_membership(const Membership& m);
/// nullopt on malformed bytes or an invalid configuration (never aborts).
std::optional<Membership> decode_membership(BytesView bytes);

/// The joint configuration that moves `current` (not joint) to `target`
/// (not joint): new voters decide with the old ones.
Membership enter_joint(const Membership& current, const Membership& target);
/// The configuration that ends the joint `m`: its incoming side.
Membership leave_joint(const Membership& m);
/// "voters {1,2,3} learners {} staging {4}" for logs and errors.
std::string describe(const Membership& m);

}  // namespace raftkit::core
