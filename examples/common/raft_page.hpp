// raft_page.hpp — GET /raft on the examples' metrics port: one node's view of
// the cluster, as JSON (/raft?format=json or /raft.json) or as one small
// self-contained HTML page (/raft; no external assets, every text escaped).
//
// Both carry the same fields: role, term, leader, commit, applied and last
// index, the newest snapshot, the configuration (voters, the old voters of
// a joint change, learners, staging servers, addresses, incarnations), when
// each other node was last heard from, and on the leader its view of each
// follower (match, next, probe/replicate/snapshot, active, incarnation,
// replacing). When the node knows no leader, "diagnosis" says why in one
// line (raftkit::diagnose()). The JSON document:
//   {"id": 1, "role": "follower", "term": 3, "leader": 2, "commit": 12,
//    "applied": 12, "last_index": 12, "snapshot_index": 0,
//    "incarnation": "1", "replacing": false, "failure": "", "diagnosis": "",
//    "disk_write_ms": null, "disk_full_ms": null,
//    "configuration": {"voters": [1, 2, 3], "voters_outgoing": [],
//      "joint": false, "learners": [], "staging": [],
//      "addresses": {"1": "127.0.0.1:7001", ...}, "incarnations": {"1": "1", ...}},
//    "contacts": [{"id": 2, "last_heard_ms_ago": 20}, {"id": 3, "last_heard_ms_ago": null}],
//    "peers": [{"id": 2, "match": 12, "next": 13, "state": "replicate",
//               "active": true, "incarnation": "1", "replacing": false}]}
// (incarnations are hexadecimal strings; "peers" is empty except on the
// leader; "last_heard_ms_ago" is null for a node not heard from since this
// one started; "disk_write_ms" is how long the log write in flight has been;
// "disk_full_ms" how long the disk has been full: log writes refused with
// no_space, retried until space is freed, null when it is not.)
#pragma once

#include <string>

#include <boost/json/object.hpp>

#include "http_server.hpp"
#include "raftkit/status.hpp"

namespace raftkit::examples {

/// The JSON document above.
boost::json::object raft_status_json(const NodeStatus& status);

/// The HTML page: the same fields, escaped.
std::string raft_status_html(const NodeStatus& status);

/// The answer to GET /raft or /raft.json: JSON when the path is /raft.json
/// or the query has format=json, HTML otherwise.
HttpResponse raft_response(const NodeStatus& status, const HttpRequest& request);

/// `text` with & < > " ' replaced by entities, for HTML text and attributes.
std::string html_escape(std::string_view text);

}  // namespace raftkit::examples
