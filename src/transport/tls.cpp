// transport/tls.cpp — certificate identities and reloadable TLS credentials;
// the design is in raftkit/tls.hpp.
#include "raftkit/tls.hpp"

#include <sys/stat.h>

#include <charconv>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace raftkit {

namespace ssl = boost::asio::ssl;

std::string_view role_name(ClientRole r) {
  switch (r) {
    case ClientRole::none: return "none";
    case ClientRole::read: return "read";
    case ClientRole::write: return "write";
    case ClientRole::admin: return "admin";
  }
  return "none";
}

std::optional<ClientRole> parse_role(std::string_view s) {
  if (s == "read") return ClientRole::read;
  if (s == "write") return ClientRole::write;
  if (s == "admin") return ClientRole::admin;
  return std::nullopt;
}

std::optional<CertIdentity> parse_identity_uri(std::string_view uri) {
  constexpr std::string_view scheme = "raftkit://";
  if (!uri.starts_with(scheme)) return std::nullopt;
  uri.remove_prefix(scheme.size());
  const auto slash = uri.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  CertIdentity id;
  id.cluster_id = std::string(uri.substr(0, slash));
  std::string_view rest = uri.substr(slash + 1);
  if (rest.starts_with("node/")) {
    rest.remove_prefix(5);
    std::uint64_t n = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec != std::errc{} || end != rest.data() + rest.size() || n == 0 || rest.front() == '0') return std::nullopt;
    id.kind = CertIdentity::Kind::node;
    id.node = NodeId{n};
    return id;
  }
  if (rest.starts_with("client/")) {
    rest.remove_prefix(7);
    const auto q = rest.find("?role=");
    if (q == std::string_view::npos || q == 0) return std::nullopt;
    auto role = parse_role(rest.substr(q + 6));
    if (!role) return std::nullopt;
    id.kind = CertIdentity::Kind::client;
    id.client_name = std::string(rest.substr(0, q));
    if (id.client_name.find('/') != std::string::npos) return std::nullopt;
    id.role = *role;
    return id;
  }
  return std::nullopt;
}

std::string node_identity_uri(std::string_view cluster_id, NodeId id) {
  return fmt::format("raftkit://{}/node/{}", cluster_id, id.value);
}

std::string client_identity_uri(std::string_view cluster_id, std::string_view name, ClientRole role) {
  return fmt::format("raftkit://{}/client/{}?role={}", cluster_id, name, role_name(role));
}

std::vector<CertIdentity> certificate_identities(const void* x509) {
  std::vector<CertIdentity> out;
  if (!x509) return out;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(static_cast<const X509*>(x509), NID_subject_alt_name, nullptr, nullptr));
  if (!names) return out;
  const int count = sk_GENERAL_NAME_num(names);
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    const ASN1_IA5STRING* s = name->d.uniformResourceIdentifier;
    const std::string_view uri(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                               static_cast<std::size_t>(ASN1_STRING_length(s)));
    if (auto id = parse_identity_uri(uri)) out.push_back(std::move(*id));
  }
  GENERAL_NAMES_free(names);
  return out;
}

std::vector<CertIdentity> peer_identities(void* ssl_handle) {
  auto* s = static_cast<SSL*>(ssl_handle);
  if (!s || SSL_get_verify_result(s) != X509_V_OK) return {};
  X509* cert = SSL_get1_peer_certificate(s);
  auto out = certificate_identities(cert);
  X509_free(cert);
  return out;
}

std::string verify_failure(void* ssl_handle) {
  auto* s = static_cast<SSL*>(ssl_handle);
  if (!s) return {};
  const long result = SSL_get_verify_result(s);
  if (result == X509_V_OK) return {};
  return X509_verify_cert_error_string(result);
}

std::string describe_tls_error(void* ssl_handle, const boost::system::error_code& ec) {
  if (auto why = verify_failure(ssl_handle); !why.empty()) return fmt::format("peer certificate rejected: {}", why);
  return ec.message();
}

// ---- credentials ----------------------------------------------------------------

std::shared_ptr<TlsCredentials> TlsCredentials::load(const TlsOptions& options, std::string& error) {
  if (options.ca_file.empty() || options.cert_file.empty() || options.key_file.empty()) {
    error = "TLS needs all three of the CA file, the certificate file and the key file";
    return nullptr;
  }
  auto creds = std::make_shared<TlsCredentials>(options);
  if (error = creds->reload(); !error.empty()) return nullptr;
  return creds;
}

std::string TlsCredentials::build(std::shared_ptr<ssl::context>& out, std::vector<CertIdentity>& ids) const {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression,
                   ec);
  SSL_CTX* native = ctx->native_handle();
  if (!SSL_CTX_set_min_proto_version(native, options_.allow_tls12 ? TLS1_2_VERSION : TLS1_3_VERSION))
    return "cannot set the minimum TLS version";
  // No session tickets or resumption: every connection proves its certificate.
  SSL_CTX_set_session_cache_mode(native, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(native, 0);
  ctx->load_verify_file(options_.ca_file, ec);
  if (ec) return fmt::format("cannot load the CA file {}: {}", options_.ca_file, ec.message());
  ctx->use_certificate_chain_file(options_.cert_file, ec);
  if (ec) return fmt::format("cannot load the certificate file {}: {}", options_.cert_file, ec.message());
  ctx->use_private_key_file(options_.key_file, ssl::context::pem, ec);
  if (ec) return fmt::format("cannot load the key file {}: {}", options_.key_file, ec.message());
  if (SSL_CTX_check_private_key(native) != 1) {
    ERR_clear_error();
    return fmt::format("the key in {} does not match the certificate in {}", options_.key_file, options_.cert_file);
  }
  ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
  if (ec) return fmt::format("cannot set the verify mode: {}", ec.message());
  ids = certificate_identities(SSL_CTX_get0_certificate(native));
  out = std::move(ctx);
  return {};
}

std::string TlsCredentials::fingerprint() const {
  std::string f;
  for (const auto* path : {&options_.ca_file, &options_.cert_file, &options_.key_file}) {
    struct stat st {};
    if (::stat(path->c_str(), &st) != 0) {
      f += "missing;";
      continue;
    }
    f += fmt::format("{}:{}.{};", st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }
  return f;
}

std::string TlsCredentials::reload() {
  const std::string seen = fingerprint();
  std::shared_ptr<ssl::context> ctx;
  std::vector<CertIdentity> ids;
  std::string error = build(ctx, ids);
  std::lock_guard lock(mu_);
  files_seen_ = seen;
  if (!error.empty()) return error;
  context_ = std::move(ctx);
  own_ = std::move(ids);
  return {};
}

bool TlsCredentials::reload_if_changed(std::string& error) {
  {
    std::lock_guard lock(mu_);
    if (fingerprint() == files_seen_) return false;
  }
  error = reload();
  return error.empty();
}

std::shared_ptr<ssl::context> TlsCredentials::context() const {
  std::lock_guard lock(mu_);
  return context_;
}

std::vector<CertIdentity> TlsCredentials::own_identities() const {
  std::lock_guard lock(mu_);
  return own_;
}

}  // namespace raftkit
