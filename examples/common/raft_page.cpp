#include "raft_page.hpp"

#include <chrono>
#include <set>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "raftkit/diagnose.hpp"

namespace raftkit::examples {

namespace {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

json::array id_array(const std::vector<NodeId>& ids) {
  json::array a;
  for (NodeId id : ids) a.push_back(id.value);
  return a;
}

json::value ms_ago(const NodeStatus& s, const std::optional<std::chrono::nanoseconds>& t) {
  if (!t) return nullptr;
  return duration_cast<milliseconds>(s.now - *t).count();
}

// Every node the configuration names, in id order.
std::set<NodeId> members(const Membership& m) {
  std::set<NodeId> ids;
  for (const auto* list : {&m.voters, &m.voters_outgoing, &m.learners, &m.staging})
    ids.insert(list->begin(), list->end());
  for (const auto& [id, address] : m.addresses) ids.insert(id);
  return ids;
}

json::object configuration_json(const Membership& m) {
  json::object addresses, incarnations;
  for (const auto& [id, address] : m.addresses) addresses[std::to_string(id.value)] = address;
  for (NodeId id : members(m)) incarnations[std::to_string(id.value)] = fmt::format("{:x}", incarnation_of(m, id));
  return {{"voters", id_array(m.voters)},   {"voters_outgoing", id_array(m.voters_outgoing)},
          {"joint", m.joint()},             {"learners", id_array(m.learners)},
          {"staging", id_array(m.staging)}, {"addresses", std::move(addresses)},
          {"incarnations", std::move(incarnations)}};
}

std::string ids_text(const std::vector<NodeId>& ids) {
  if (ids.empty()) return "none";
  std::string out;
  for (NodeId id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id.value);
  return out;
}

std::string row(std::string_view name, std::string_view value) {
  return fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", html_escape(name), html_escape(value));
}

std::string summary_table(const NodeStatus& s) {
  std::string t = "<table>\n";
  t += row("role", to_string(s.role));
  t += row("term", std::to_string(s.term.value));
  t += row("leader", s.leader.is_none() ? "none known" : std::to_string(s.leader.value));
  t += row("commit", std::to_string(s.commit.value));
  t += row("applied", std::to_string(s.applied.value));
  t += row("last index", std::to_string(s.last_index.value));
  t += row("snapshot", s.snapshot_index.value == 0 ? "none" : "up to index " + std::to_string(s.snapshot_index.value));
  t += row("incarnation", fmt::format("{:x}{}", s.incarnation, s.replacing ? " (replacing: not swapped in yet)" : ""));
  t += row("generation", std::to_string(s.generation));
  if (s.disk_write_since)
    t += row("log write in flight", duration_text(s.now - *s.disk_write_since));
  if (s.disk_full_since)
    t += row("disk full", "for " + duration_text(s.now - *s.disk_full_since) + ": writes refused with no_space");
  if (!s.failure.empty()) t += row("failure", s.failure);
  return t + "</table>\n";
}

std::string configuration_table(const Membership& m) {
  std::string t = "<h2>Configuration</h2>\n<table>\n";
  t += row("voters", ids_text(m.voters));
  if (m.joint()) t += row("joint: old voters", ids_text(m.voters_outgoing));
  t += row("learners", ids_text(m.learners));
  t += row("staging", ids_text(m.staging));
  t += "</table>\n<table>\n<tr><th>node</th><th>address</th><th>incarnation</th></tr>\n";
  for (NodeId id : members(m)) {
    const auto address = m.addresses.find(id);
    t += fmt::format("<tr><td>{}</td><td>{}</td><td>{:x}</td></tr>\n", id.value,
                     address == m.addresses.end() ? "" : html_escape(address->second), incarnation_of(m, id));
  }
  return t + "</table>\n";
}

std::string peers_table(const NodeStatus& s) {
  std::string t = "<h2>Nodes</h2>\n<table>\n<tr><th>node</th><th>last heard</th>";
  if (!s.peers.empty())
    t += "<th>match</th><th>next</th><th>state</th><th>active</th><th>incarnation</th><th>replacing</th>";
  t += "</tr>\n";
  for (const PeerContact& c : s.contacts) {
    t += fmt::format("<tr><td>{}</td><td>{}</td>", c.id.value,
                     c.last_heard ? duration_text(s.now - *c.last_heard) + " ago" : "never since start");
    for (const PeerStatus& p : s.peers) {
      if (p.id != c.id) continue;
      t += fmt::format("<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:x}</td><td>{}</td>", p.match.value,
                       p.next.value, html_escape(p.state), p.active ? "yes" : "no", p.incarnation,
                       p.replacing ? "yes" : "no");
    }
    t += "</tr>\n";
  }
  return t + "</table>\n";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

json::object raft_status_json(const NodeStatus& s) {
  json::array contacts, peers;
  for (const PeerContact& c : s.contacts)
    contacts.push_back(json::object{{"id", c.id.value}, {"last_heard_ms_ago", ms_ago(s, c.last_heard)}});
  for (const PeerStatus& p : s.peers)
    peers.push_back(json::object{{"id", p.id.value},       {"match", p.match.value},
                                 {"next", p.next.value},   {"state", p.state},
                                 {"active", p.active},     {"incarnation", fmt::format("{:x}", p.incarnation)},
                                 {"replacing", p.replacing}});
  return {{"id", s.id.value},
          {"role", to_string(s.role)},
          {"term", s.term.value},
          {"leader", s.leader.value},
          {"commit", s.commit.value},
          {"applied", s.applied.value},
          {"last_index", s.last_index.value},
          {"snapshot_index", s.snapshot_index.value},
          {"incarnation", fmt::format("{:x}", s.incarnation)},
          {"generation", s.generation},
          {"replacing", s.replacing},
          {"failure", s.failure},
          {"diagnosis", diagnose(s)},
          {"disk_write_ms", ms_ago(s, s.disk_write_since)},
          {"disk_full_ms", ms_ago(s, s.disk_full_since)},
          {"configuration", configuration_json(s.membership)},
          {"contacts", std::move(contacts)},
          {"peers", std::move(peers)}};
}

std::string raft_status_html(const NodeStatus& s) {
  const std::string diagnosis = diagnose(s);
  std::string page = fmt::format(
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"2\">\n"
      "<title>raftkit node {0}</title>\n<style>body{{font-family:sans-serif;margin:1em}}"
      "table{{border-collapse:collapse;margin:.5em 0}}th,td{{border:1px solid #ccc;padding:2px 8px;text-align:left}}"
      ".why{{background:#fee;border:1px solid #c00;padding:4px 8px}}</style></head><body>\n"
      "<h1>raftkit node {0}: {1}</h1>\n",
      s.id.value, html_escape(to_string(s.role)));
  if (!diagnosis.empty()) page += fmt::format("<p class=\"why\">No leader: {}</p>\n", html_escape(diagnosis));
  page += summary_table(s) + configuration_table(s.membership) + peers_table(s);
  page += "<p><a href=\"/raft.json\">JSON</a> &middot; refreshed every 2 s</p>\n</body></html>\n";
  return page;
}

HttpResponse raft_response(const NodeStatus& status, const HttpRequest& request) {
  HttpResponse r;
  const auto format = request.query.find("format");
  if (request.path == "/raft.json" || (format != request.query.end() && format->second == "json")) {
    r.content_type = "application/json";
    r.body = json::serialize(raft_status_json(status));
    return r;
  }
  r.content_type = "text/html; charset=utf-8";
  r.body = raft_status_html(status);
  return r;
}

}  // namespace raftkit::examples
