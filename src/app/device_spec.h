// The command line's device specs (`vireo run --disk ... --net ... --balloon ...`) into the
// machine's configuration (machine/machine_config.h). The CLI's syntax, so it lives with the CLI;
// the API and --config-file describe the same devices in Firecracker's JSON
// (vmm/machine_config_from).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "machine/machine_config.h"

namespace vireo {

// `path=FILE[,readonly=on|off][,direct=on|off][,serial=ID][,bw=LIMIT][,iops=LIMIT]`; errors
// name the offending key or value.
Result<DiskConfig> parse_disk_spec(std::string_view spec);
// `tap=NAME[,mac=aa:bb:cc:dd:ee:ff][,rx_bw=LIMIT][,rx_ops=LIMIT][,tx_bw=LIMIT][,tx_ops=LIMIT]`.
Result<NetConfig> parse_net_spec(std::string_view spec);
// `amount_mib=N[,deflate_on_oom=on|off][,stats_interval=S][,free_page_reporting=on|off]`: the
// target in MiB (0..kMaxBalloonMib) and the polling interval of the statistics in seconds (0,
// the default: none), as PUT /balloon's fields.
Result<BalloonConfig> parse_balloon_spec(std::string_view spec);
// The balloon's target must not be more than the guest's RAM (`memory` bytes, --memory).
Result<void> check_balloon_fits(const BalloonConfig& balloon, std::uint64_t memory);
// A rate limit (one token bucket, Firecracker's semantics): `AMOUNT[/MS][+BURST]`, AMOUNT tokens
// per MS milliseconds (default 1000: per second) and a one-time burst of BURST. With `bytes`,
// AMOUNT and BURST take K/M/G/T suffixes (binary: 10M is 10 MiB); otherwise they count
// operations. "bw=10M" is 10 MiB/s, "iops=500/100+2000" is 500 operations per 100 ms with 2000
// more once.
Result<BucketConfig> parse_bucket_spec(std::string_view text, bool bytes, std::string_view what);

}  // namespace vireo
