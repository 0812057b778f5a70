// FaultFs: an in-memory file system that simulates a crash and injects faults.
//
// It keeps two states: what the process sees (every write applied) and what
// the disk holds. Mutations since the last sync sit in an ordered list of
// pending operations; File::sync() moves that file's pending writes and
// truncates to the disk, sync_dir() moves the pending name operations
// (create, rename, unlink). crash(keep, tear) then applies the first `keep`
// pending operations to the disk in order, the last of them (if it is a
// write) cut to its first `tear` bytes, throws the rest away and makes the
// process view equal to the disk: "lose every write after the last sync",
// "tear the last write at any byte" and everything between.
//
// Faults: die_after(n) makes the n+1-th mutating operation and every one after
// it fail with EIO and do nothing (the process dies there); a hook can fail
// any operation with any errno (ENOSPC writes write half of their bytes first);
// flip_bit() damages the disk and the view alike.
#pragma once

#include <cerrno>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "raftkit/error.hpp"
#include "storage/file_system.hpp"

namespace raftkit::test {

class FaultFs final : public FileSystem, public std::enable_shared_from_this<FaultFs> {
 public:
  enum class Op { write, truncate, create, rename, unlink, sync, sync_dir };

  /// Return an errno to make `op` on `path` fail, 0 to let it through.
  std::function<int(Op op, const std::string& path)> hook;

  void die_after(std::int64_t mutations) {
    std::lock_guard l(mu_);
    budget_ = mutations;
  }
  std::int64_t mutations() const {
    std::lock_guard l(mu_);
    return mutations_;
  }
  std::size_t pending() const {
    std::lock_guard l(mu_);
    return pending_.size();
  }
  /// Size of the last pending operation if it is a write, else 0.
  std::size_t last_pending_write_size(std::size_t keep) const {
    std::lock_guard l(mu_);
    if (keep == 0 || keep > pending_.size() || pending_[keep - 1].kind != Op::write) return 0;
    return pending_[keep - 1].bytes.size();
  }
  std::size_t sync_count() const {
    std::lock_guard l(mu_);
    return syncs_;
  }

  /// An independent copy (files, disk state, pending operations); no locks held.
  std::shared_ptr<FaultFs> clone() const {
    std::lock_guard l(mu_);
    auto c = std::make_shared<FaultFs>();
    std::map<const Inode*, std::shared_ptr<Inode>> map;
    auto copy = [&](const std::shared_ptr<Inode>& ino) -> std::shared_ptr<Inode> {
      if (!ino) return nullptr;
      auto& slot = map[ino.get()];
      if (!slot) slot = std::make_shared<Inode>(*ino);
      return slot;
    };
    for (auto& [n, ino] : names_) c->names_[n] = copy(ino);
    for (auto& [n, ino] : durable_names_) c->durable_names_[n] = copy(ino);
    for (const Pending& p : pending_) {
      Pending q = p;
      q.ino = copy(p.ino);
      c->pending_.push_back(std::move(q));
    }
    return c;
  }

  void crash(std::size_t keep = 0, std::optional<std::size_t> tear = std::nullopt) {
    std::lock_guard l(mu_);
    for (std::size_t i = 0; i < keep && i < pending_.size(); ++i) {
      Pending& p = pending_[i];
      if (p.kind == Op::write && tear && i + 1 == keep) p.bytes.resize(std::min(*tear, p.bytes.size()));
      apply_durable(p);
    }
    pending_.clear();
    names_ = durable_names_;
    for (auto& [name, ino] : names_) ino->data = ino->durable;
    locks_.clear();
    budget_ = -1;
    mutations_ = 0;
  }

  void flip_bit(const std::string& path, std::size_t offset, int bit) {
    std::lock_guard l(mu_);
    auto& ino = names_.at(path);
    ino->data.at(offset) ^= static_cast<std::uint8_t>(1u << bit);
    if (offset < ino->durable.size()) ino->durable[offset] ^= static_cast<std::uint8_t>(1u << bit);
  }
  Bytes contents(const std::string& path) const {
    std::lock_guard l(mu_);
    return names_.at(path)->data;
  }
  void put(const std::string& path, Bytes data) {
    std::lock_guard l(mu_);
    auto ino = std::make_shared<Inode>();
    ino->data = ino->durable = std::move(data);
    names_[path] = durable_names_[path] = ino;
  }
  std::vector<std::string> paths() const {
    std::lock_guard l(mu_);
    std::vector<std::string> out;
    for (auto& [name, ino] : names_) out.push_back(name);
    return out;
  }

  // ---- FileSystem -------------------------------------------------------------

  std::error_code open(const std::string& path, OpenMode mode, std::unique_ptr<File>& out) override {
    std::lock_guard l(mu_);
    auto it = names_.find(path);
    if (mode == OpenMode::create_new) {
      if (auto ec = gate(Op::create, path)) return ec;
      if (it == names_.end()) {
        auto ino = std::make_shared<Inode>();
        names_[path] = ino;
        pending_.push_back(Pending{Op::create, ino, 0, {}, path, {}});
        out = std::make_unique<FaultFile>(shared_from_this(), ino, path);
        return {};
      }
      it->second->data.clear();
      pending_.push_back(Pending{Op::truncate, it->second, 0, {}, path, {}});
    } else if (it == names_.end()) {
      return {ENOENT, std::generic_category()};
    }
    out = std::make_unique<FaultFile>(shared_from_this(), names_[path], path);
    return {};
  }
  std::error_code list(const std::string& dir, std::vector<std::string>& names) override {
    std::lock_guard l(mu_);
    const std::string prefix = dir + "/";
    for (auto& [name, ino] : names_) {
      if (name.compare(0, prefix.size(), prefix) == 0 && name.find('/', prefix.size()) == std::string::npos)
        names.push_back(name.substr(prefix.size()));
    }
    return {};
  }
  std::error_code rename(const std::string& from, const std::string& to) override {
    std::lock_guard l(mu_);
    if (auto ec = gate(Op::rename, from)) return ec;
    auto it = names_.find(from);
    if (it == names_.end()) return {ENOENT, std::generic_category()};
    auto ino = it->second;
    names_.erase(it);
    names_[to] = ino;
    pending_.push_back(Pending{Op::rename, ino, 0, {}, from, to});
    return {};
  }
  std::error_code unlink(const std::string& path) override {
    std::lock_guard l(mu_);
    if (auto ec = gate(Op::unlink, path)) return ec;
    if (names_.erase(path) == 0) return {ENOENT, std::generic_category()};
    pending_.push_back(Pending{Op::unlink, nullptr, 0, {}, path, {}});
    return {};
  }
  std::error_code sync_dir(const std::string& dir) override {
    std::lock_guard l(mu_);
    if (auto ec = gate(Op::sync_dir, dir)) return ec;
    std::vector<Pending> rest;
    for (Pending& p : pending_) {
      if (p.kind == Op::create || p.kind == Op::rename || p.kind == Op::unlink) apply_durable(p);
      else rest.push_back(std::move(p));
    }
    pending_ = std::move(rest);
    return {};
  }
  std::error_code make_dir(const std::string&) override { return {}; }
  std::error_code lock(const std::string& path, std::unique_ptr<FileLock>& out) override {
    std::lock_guard l(mu_);
    if (!locks_.insert(path).second) return errc::locked;
    out = std::make_unique<Lock>(shared_from_this(), path);
    return {};
  }

 private:
  struct Inode {
    Bytes data;     // what the process sees
    Bytes durable;  // what the disk holds
  };
  struct Pending {
    Op kind;
    std::shared_ptr<Inode> ino;
    std::uint64_t offset;
    Bytes bytes;
    std::string path, to;
  };

  class Lock final : public FileLock {
   public:
    Lock(std::shared_ptr<FaultFs> fs, std::string path) : fs_(std::move(fs)), path_(std::move(path)) {}
    ~Lock() override {
      std::lock_guard l(fs_->mu_);
      fs_->locks_.erase(path_);
    }

   private:
    std::shared_ptr<FaultFs> fs_;
    std::string path_;
  };

  class FaultFile final : public File {
   public:
    FaultFile(std::shared_ptr<FaultFs> fs, std::shared_ptr<Inode> ino, std::string path)
        : fs_(std::move(fs)), ino_(std::move(ino)), path_(std::move(path)) {}
    std::error_code write_at(std::uint64_t offset, BytesView data) override {
      std::lock_guard l(fs_->mu_);
      std::error_code ec = fs_->gate(Op::write, path_);
      BytesView applied = data;
      if (ec == std::errc::no_space_on_device) applied = data.first(data.size() / 2);
      else if (ec) return ec;
      Bytes& d = ino_->data;
      if (d.size() < offset + applied.size()) d.resize(offset + applied.size());
      std::copy(applied.begin(), applied.end(), d.begin() + static_cast<std::ptrdiff_t>(offset));
      fs_->pending_.push_back(Pending{Op::write, ino_, offset, Bytes(applied.begin(), applied.end()), path_, {}});
      return ec;
    }
    std::error_code read_at(std::uint64_t offset, std::span<std::uint8_t> out, std::size_t& got) override {
      std::lock_guard l(fs_->mu_);
      const Bytes& d = ino_->data;
      got = offset >= d.size() ? 0 : std::min<std::size_t>(out.size(), d.size() - offset);
      std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(offset), got, out.begin());
      return {};
    }
    std::error_code sync() override {
      std::lock_guard l(fs_->mu_);
      if (auto ec = fs_->gate(Op::sync, path_)) return ec;
      ++fs_->syncs_;
      std::vector<Pending> rest;
      for (Pending& p : fs_->pending_) {
        if (p.ino == ino_ && (p.kind == Op::write || p.kind == Op::truncate)) fs_->apply_durable(p);
        else rest.push_back(std::move(p));
      }
      fs_->pending_ = std::move(rest);
      return {};
    }
    std::error_code truncate(std::uint64_t size) override {
      std::lock_guard l(fs_->mu_);
      if (auto ec = fs_->gate(Op::truncate, path_)) return ec;
      ino_->data.resize(size);
      fs_->pending_.push_back(Pending{Op::truncate, ino_, size, {}, path_, {}});
      return {};
    }
    std::error_code size(std::uint64_t& out) override {
      std::lock_guard l(fs_->mu_);
      out = ino_->data.size();
      return {};
    }

   private:
    std::shared_ptr<FaultFs> fs_;
    std::shared_ptr<Inode> ino_;
    std::string path_;
  };

  /// Counts a mutation; fails it if the process is dead or the hook says so.
  std::error_code gate(Op op, const std::string& path) {
    if (budget_ >= 0 && mutations_ >= budget_) return {EIO, std::generic_category()};
    ++mutations_;
    if (hook) {
      if (const int err = hook(op, path)) return {err, std::generic_category()};
    }
    return {};
  }

  void apply_durable(Pending& p) {
    switch (p.kind) {
      case Op::write: {
        Bytes& d = p.ino->durable;
        if (d.size() < p.offset + p.bytes.size()) d.resize(p.offset + p.bytes.size());
        std::copy(p.bytes.begin(), p.bytes.end(), d.begin() + static_cast<std::ptrdiff_t>(p.offset));
        break;
      }
      case Op::truncate: p.ino->durable.resize(p.offset); break;
      case Op::create: durable_names_[p.path] = p.ino; break;
      case Op::rename:
        durable_names_.erase(p.path);
        durable_names_[p.to] = p.ino;
        break;
      case Op::unlink: durable_names_.erase(p.path); break;
      default: break;
    }
  }

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Inode>> names_;
  std::map<std::string, std::shared_ptr<Inode>> durable_names_;
  std::vector<Pending> pending_;
  std::set<std::string> locks_;
  std::int64_t budget_ = -1;
  std::int64_t mutations_ = 0;
  std::size_t syncs_ = 0;
};

}  // namespace raftkit::test
