// raftkit/logger.hpp — where the library's log lines go.
//
// raftkit never writes to a stream on its own: every line it has to say goes
// through the Logger in Options::logger. A Logger is a level filter in front
// of a sink, a function that receives the level, the node the line is about,
// the node's current term and the formatted message (no trailing newline).
// The default sink writes one line to stderr,
//
//     raftkit: node 3 (term 7) warn: log write stalled for more than 2000 ms
//
// so a service that does nothing gets what the library printed before
// loggers existed; a service with its own logging (spdlog, glog, syslog,
// journald, a JSON pipeline) hands in a sink that forwards to it.
//
// Who calls the sink, and from where: the node's strand (role changes,
// elections, snapshot decisions), the node's disk thread (log write and
// fsync failures) and the transport's I/O threads (connection errors).
// Several of these may call the sink at the same time, so it must be
// thread-safe, and it must not block: it runs inside the protocol's loop,
// and a sink that waits on a full pipe or a slow network delays heartbeats
// and can cost the cluster its leader. Buffer and hand off if the target is
// slow. The sink must not call back into the Node.
//
// Formatting is lazy: `log.info(id, term, "applied {} entries", n)` checks
// the level before it formats, so a filtered-out debug line costs one
// comparison.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "raftkit/types.hpp"

namespace raftkit {

/// How much a log line matters. Ordered: a Logger passes lines at or above
/// its minimum level.
enum class LogLevel : std::uint8_t {
  debug = 0,  ///< protocol detail for diagnosing a problem (off by default)
  info = 1,   ///< a change an operator may want to see: role, leader, snapshot
  warn = 2,   ///< something is wrong but the node goes on: a stalled disk, a refused peer
  error = 3,  ///< the node or a component stopped: a failed fsync, a corrupt file
};

/// "debug", "info", "warn" or "error".
std::string_view to_string(LogLevel level) noexcept;

/// A level filter in front of a sink. Copyable and cheap to copy (it shares
/// the sink); immutable once built, so one Logger may be used from many
/// threads at once.
class Logger {
 public:
  /// Receives one log line: its level, the node it is about (NodeId{} when
  /// the component does not know its node, e.g. a store opened before the
  /// node), that node's current term (Term{} when unknown) and the message,
  /// without a trailing newline. Thread-safe and non-blocking: see the top
  /// of this header.
  using Sink = std::function<void(LogLevel level, NodeId node, Term term, std::string_view message)>;

  /// The default: one line per message to stderr, lines of level info and
  /// above.
  Logger();
  /// Lines at or above `min_level` go to `sink`. An empty sink drops every
  /// line (Options::validate refuses it: say Logger::discard() if you mean it).
  explicit Logger(Sink sink, LogLevel min_level = LogLevel::info);

  /// One line per message to stderr, in the format shown at the top of this
  /// header, written with a single call so lines from several threads do not
  /// interleave.
  static Logger to_stderr(LogLevel min_level = LogLevel::info);
  /// Drops every line (for tests and benchmarks that want silence).
  static Logger discard();
  /// The line the default sink writes for these arguments, newline included.
  static std::string format_line(LogLevel level, NodeId node, Term term, std::string_view message);

  /// True when there is a sink (every constructor except one given an empty Sink).
  bool has_sink() const noexcept { return static_cast<bool>(sink_); }
  /// The least level that reaches the sink.
  LogLevel min_level() const noexcept { return min_level_; }
  /// True if a line of `level` would reach the sink.
  bool enabled(LogLevel level) const noexcept { return sink_ && level >= min_level_; }

  /// Passes an already formatted line to the sink if `level` is enabled.
  void log(LogLevel level, NodeId node, Term term, std::string_view message) const {
    if (enabled(level)) sink_(level, node, term, message);
  }

  /// Formats with fmt (checked at compile time) and logs at debug level;
  /// nothing is formatted when debug is filtered out.
  template <class... Args>
  void debug(NodeId node, Term term, fmt::format_string<Args...> format, Args&&... args) const {
    emit(LogLevel::debug, node, term, format, std::forward<Args>(args)...);
  }
  /// As debug(), at info level.
  template <class... Args>
  void info(NodeId node, Term term, fmt::format_string<Args...> format, Args&&... args) const {
    emit(LogLevel::info, node, term, format, std::forward<Args>(args)...);
  }
  /// As debug(), at warn level.
  template <class... Args>
  void warn(NodeId node, Term term, fmt::format_string<Args...> format, Args&&... args) const {
    emit(LogLevel::warn, node, term, format, std::forward<Args>(args)...);
  }
  /// As debug(), at error level.
  template <class... Args>
  void error(NodeId node, Term term, fmt::format_string<Args...> format, Args&&... args) const {
    emit(LogLevel::error, node, term, format, std::forward<Args>(args)...);
  }

 private:
  template <class... Args>
  void emit(LogLevel level, NodeId node, Term term, fmt::format_string<Args...> format, Args&&... args) const {
    if (!enabled(level)) return;
    sink_(level, node, term, fmt::format(format, std::forward<Args>(args)...));
  }

  Sink sink_;
  LogLevel min_level_ = LogLevel::info;
};

}  // namespace raftkit

/// \cond fmt_plumbing
// Formats a LogLevel as its name ("warn"), so `fmt::format("{}", level)` works.
template <>
struct fmt::formatter<raftkit::LogLevel> : fmt::formatter<std::string_view> {
  // Writes the level's name, honouring width and alignment specs.
  auto format(raftkit::LogLevel level, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(raftkit::to_string(level), ctx);
  }
};
/// \endcond
