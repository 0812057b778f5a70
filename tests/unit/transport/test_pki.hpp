// A throw-away PKI for TLS tests, made at test time by scripts/make-certs.sh
// (the openssl command): nothing secret is committed. Created once per test
// process in a fresh temporary directory, removed at exit.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

#include <fmt/format.h>

#include "raftkit/tls.hpp"

#ifndef RAFTKIT_SOURCE_DIR
#error "RAFTKIT_SOURCE_DIR must name the source tree (for scripts/make-certs.sh)"
#endif

namespace raftkit::test {

class TestPki {
 public:
  static constexpr const char* kCluster = "test-cluster";

  /// The process-wide instance (made on first use).
  static const TestPki& get() {
    static const TestPki pki;
    return pki;
  }

  /// Credentials in `set` ("main", "other-ca", "expired", "other-cluster")
  /// for `name` ("node-1", "client-alice", ...).
  TlsOptions options(const std::string& set, const std::string& name) const {
    TlsOptions o;
    const auto d = root_ / set;
    o.ca_file = (root_ / "main" / "ca.pem").string();  // every side trusts the main CA
    o.cert_file = (d / (name + ".pem")).string();
    o.key_file = (d / (name + ".key")).string();
    o.reload_check_interval = std::chrono::milliseconds(0);
    return o;
  }
  TlsOptions node(std::uint64_t id) const { return options("main", fmt::format("node-{}", id)); }
  std::filesystem::path dir(const std::string& set) const { return root_ / set; }

  /// Runs make-certs.sh with `args` (shell words) into `set`. Throws on failure.
  void make(const std::string& set, const std::string& args) const {
    const auto cmd = fmt::format("bash '{}/scripts/make-certs.sh' '{}' {} >'{}/make-certs.log' 2>&1", RAFTKIT_SOURCE_DIR,
                                 (root_ / set).string(), args, root_.string());
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("make-certs.sh failed: " + cmd);
  }

  ~TestPki() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

 private:
  TestPki() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "raftkit-pki-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    const auto main = (root_ / "main").string();
    make("main", fmt::format("{} --nodes 1,2,3,4 --client reader:read --client writer:write --client admin:admin",
                             kCluster));
    // Same names, a CA nobody trusts.
    make("other-ca", fmt::format("{} --nodes 1,2,3", kCluster));
    // Signed by the trusted CA, but expired yesterday.
    make("expired", fmt::format("{} --ca '{}' --nodes 3 --days -1", kCluster, main));
    // Signed by the trusted CA, for another cluster.
    make("other-cluster", fmt::format("other-cluster --ca '{}' --nodes 3 --client writer:write", main));
  }

  std::filesystem::path root_;
};

}  // namespace raftkit::test
