// Helpers for the shared log's tests: a scripted multi-group workload, its
// model (one memory store per group) and the check that a reopened log holds
// every group's state after one and the same step.
#pragma once

#include <functional>
#include <map>
#include <optional>

#include "fault_fs.hpp"
#include "storage/shared_log.hpp"
#include "storage_util.hpp"

namespace raftkit::test {

inline const std::vector<GroupId> kGroups{1, 2, 7};

/// One step: an operation on one group's store, or the host's sync (group 0).
struct GroupStep {
  std::string name;
  GroupId group = 0;
  std::function<std::error_code(LogStore&)> op;  // null: the host's sync
};

using GroupImages = std::map<GroupId, StoreImage>;

inline storage::SharedLogOptions shared_options(unsigned bugs = 0) {
  storage::SharedLogOptions o;
  o.segment_bytes = 4096;
  o.logger = Logger::discard();
#ifdef RAFTKIT_PLANTED_BUGS
  o.planted_bugs = bugs;
#else
  (void)bugs;
#endif
  return o;
}

struct Views {
  std::unique_ptr<storage::SharedLog> log;
  std::map<GroupId, std::unique_ptr<LogStore>> g;
};

inline std::error_code open_views(const std::shared_ptr<FaultFs>& fs, Views& v, unsigned bugs = 0,
                                  std::string* detail = nullptr) {
  v.g.clear();
  v.log.reset();
  if (auto ec = storage::open_shared_log(fs, "/data", shared_options(bugs), v.log, detail)) return ec;
  for (GroupId id : kGroups) v.g[id] = v.log->group(id);
  return {};
}

inline GroupImages images_of(const std::map<GroupId, std::unique_ptr<LogStore>>& stores) {
  GroupImages out;
  for (const auto& [id, s] : stores) out[id] = image_of(*s);
  return out;
}

/// images[k]: every group's state after the first k steps (memory stores).
inline std::vector<GroupImages> model_images(const std::vector<GroupStep>& w) {
  std::map<GroupId, std::unique_ptr<LogStore>> m;
  for (GroupId id : kGroups) m[id] = make_memory_store();
  std::vector<GroupImages> images{images_of(m)};
  for (const GroupStep& s : w) {
    if (s.op) REQUIRE(!s.op(*m.at(s.group)));
    images.push_back(images_of(m));
  }
  return images;
}

/// Why `got` is no state after a step in [acked, issued]; nullopt if it is.
inline std::optional<std::string> mismatch(const GroupImages& got, const std::vector<GroupImages>& images, std::size_t acked,
                                           std::size_t issued) {
  for (std::size_t j = acked; j <= issued && j < images.size(); ++j) {
    if (got == images[j]) return std::nullopt;
  }
  std::string why = fmt::format("recovered state is no state between steps {} and {}:", acked, issued);
  for (const auto& [id, im] : got) why += fmt::format(" group {}: {};", id, describe(im));
  return why;
}

}  // namespace raftkit::test
