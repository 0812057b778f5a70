// storage/wal_store_fs.hpp — opening the WAL store on a chosen file layer.
//
// The public open_wal_store() always uses the real file system. Tests, the
// fuzz targets and benchmarks put another FileSystem underneath (a
// fault-injecting, crash-simulating one; one that counts fdatasyncs), which is
// an internal interface (storage/file_system.hpp), so this entry point is
// internal too.
#pragma once

#include <memory>
#include <string>
#include <system_error>

#include "raftkit/log_store.hpp"
#include "raftkit/wal_store.hpp"
#include "storage/file_system.hpp"

namespace raftkit::storage {

/// open_wal_store (raftkit/wal_store.hpp), with every file operation going
/// through `fs`. Same errors and detail.
std::error_code open_wal_store(std::shared_ptr<FileSystem> fs, const std::string& dir, const WalOptions& options,
                               std::unique_ptr<LogStore>& out, std::string* error_detail = nullptr);

}  // namespace raftkit::storage
