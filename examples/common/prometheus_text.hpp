// prometheus_text.hpp — a reader for the Prometheus text exposition format,
// enough to check what raftkit::to_prometheus() writes and what a server's
// /metrics endpoint serves (the tests use it; a tool that scrapes a node can
// too). It reads `# HELP` / `# TYPE` lines and samples
// `name{label="value",...} number`; it rejects what it does not understand
// instead of guessing: an error names the line.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace raftkit::examples {

struct PromSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct PromText {
  std::map<std::string, std::string> types;  ///< family name -> counter/gauge/histogram/...
  std::map<std::string, std::string> help;   ///< family name -> help text
  std::vector<PromSample> samples;           ///< in the order they appeared

  /// The first sample named `name` whose labels include every pair of
  /// `labels`.
  std::optional<double> value(std::string_view name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        if (it == s.labels.end() || it->second != v) match = false;
      }
      if (match) return s.value;
    }
    return std::nullopt;
  }
};

/// Parses `text`; nullopt with `error` set (naming the line) if any line is
/// malformed.
inline std::optional<PromText> parse_prometheus_text(std::string_view text, std::string& error) {
  PromText out;
  std::size_t line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    if (nl == std::string_view::npos) {
      error = "line " + std::to_string(line_no) + ": no newline at the end";
      return std::nullopt;
    }
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    auto fail = [&](std::string_view why) {
      error = "line " + std::to_string(line_no) + ": " + std::string(why) + ": " + std::string(line);
      return std::nullopt;
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      // "# HELP name text" or "# TYPE name type"; other comments are allowed.
      if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
        std::string_view rest = line.substr(7);
        auto sp = rest.find(' ');
        if (sp == std::string_view::npos || sp == 0) return fail("HELP/TYPE without a name and text");
        std::string name(rest.substr(0, sp));
        std::string arg(rest.substr(sp + 1));
        if (line[2] == 'T') {
          if (out.types.count(name)) return fail("second TYPE line for a family");
          if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" && arg != "untyped")
            return fail("unknown type");
          out.types[name] = arg;
        } else {
          out.help[name] = arg;
        }
      }
      continue;
    }
    PromSample s;
    std::size_t i = 0;
    auto name_char = [](char c, bool first) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
             (!first && c >= '0' && c <= '9');
    };
    while (i < line.size() && name_char(line[i], i == 0)) ++i;
    if (i == 0) return fail("sample without a metric name");
    s.name = std::string(line.substr(0, i));
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t k = i;
        while (i < line.size() && name_char(line[i], i == k)) ++i;
        if (i == k || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return fail("bad label");
        std::string key(line.substr(k, i - k));
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        if (i >= line.size()) return fail("unterminated label value");
        ++i;  // closing quote
        if (!s.labels.emplace(std::move(key), std::move(value)).second) return fail("repeated label");
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return fail("unterminated label set");
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') return fail("no space before the value");
    std::string number(line.substr(i + 1));
    if (auto sp = number.find(' '); sp != std::string::npos) number.resize(sp);  // a timestamp may follow
    if (number == "+Inf") {
      s.value = HUGE_VAL;
    } else if (number == "-Inf") {
      s.value = -HUGE_VAL;
    } else {
      char* end = nullptr;
      s.value = std::strtod(number.c_str(), &end);
      if (number.empty() || end != number.c_str() + number.size()) return fail("value is not a number");
    }
    out.samples.push_back(std::move(s));
  }
  return out;
}

}  // namespace raftkit::examples
