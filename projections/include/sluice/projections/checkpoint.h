// Checkpoint files: where a projection's position and read-model snapshot survive restarts.
//
// File <log dir>/checkpoints/<projection>.ckpt, little-endian:
//
//   0   magic "SLUCKPT1"      8  version (u32) = 1     12 header_size (u32) = 72
//   16  position (u64)        next position to apply: events [0, position) are in the snapshot
//   24  applied_address (u64) log address after the last applied record
//   32  events_applied (u64)  events the projection handled (lifetime)
//   40  digest (u64)          the read model's digest at `position`
//   48  written_ns (i64)      CLOCK_REALTIME when written
//   56  payload_size (u64)
//   64  payload_crc (u32)     masked CRC32C of the payload
//   68  header_crc (u32)      masked CRC32C of bytes [0, 68)
//   72  payload               the runner's snapshot: read model, parked keys, dead letters
//
// Atomicity: write_checkpoint() creates the checkpoints directory durably (parent fsynced),
// then writes the file with write_file_atomically() (sluice/bus/file_ops.h): <name>.ckpt.tmp
// written and fsynced, renamed over <name>.ckpt, the directory fsynced. After a crash or a
// power cut the file is the old checkpoint or the new one, whole; once it returns OK, the new
// one (tests/projections/checkpoint_power_loss_test.cc checks this with the power-loss
// simulator). The runner only writes a checkpoint once the log is durable up to its
// position (never pointing past the durable end of the log).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

class FileOps;

struct CheckpointFileOptions {
  FileOps* file_ops = nullptr;  // nullptr: the real system calls (a test's simulator otherwise)
  mode_t file_mode = 0640;      // owner read/write, group read (the umask applies too)
  mode_t dir_mode = 0750;       // of the checkpoints directory, when this creates it
};

struct CheckpointData {
  uint64_t position = 0;
  uint64_t applied_address = 0;
  uint64_t events_applied = 0;
  uint64_t digest = 0;
  int64_t written_ns = 0;
  std::string payload;
};

// "<log dir>/checkpoints"
std::string checkpoint_dir(const std::string& log_dir);
std::string checkpoint_path(const std::string& log_dir, std::string_view projection);
// Projection names: 1..63 bytes of [A-Za-z0-9_.-]; error names the projection.
Status validate_projection_name(std::string_view name);

Status write_checkpoint(const std::string& log_dir, std::string_view projection, const CheckpointData& data,
                        const CheckpointFileOptions& options = {});
// nullopt when there is no checkpoint; corruption (naming the file) when it is damaged.
Result<std::optional<CheckpointData>> read_checkpoint(const std::string& log_dir, std::string_view projection);

}  // namespace sluice
