#include "raftkit/logger.hpp"

#include <cstdio>

namespace raftkit {

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warn: return "warn";
    case LogLevel::error: return "error";
  }
  return "unknown";
}

std::string Logger::format_line(LogLevel level, NodeId node, Term term, std::string_view message) {
  return fmt::format("raftkit: node {} (term {}) {}: {}\n", node, term, level, message);
}

Logger Logger::to_stderr(LogLevel min_level) {
  return Logger(
      [](LogLevel level, NodeId node, Term term, std::string_view message) {
        // One fwrite of the whole line: stdio locks the stream per call, so
        // lines from several threads stay whole.
        std::string line = format_line(level, node, term, message);
        std::fwrite(line.data(), 1, line.size(), stderr);
      },
      min_level);
}

Logger Logger::discard() {
  return Logger([](LogLevel, NodeId, Term, std::string_view) {}, LogLevel::error);
}

Logger::Logger() : Logger(to_stderr()) {}

Logger::Logger(Sink sink, LogLevel min_level) : sink_(std::move(sink)), min_level_(min_level) {}

}  // namespace raftkit
