/* Sizes and protocol constants of the INA program (Tofino and BMv2 twin).
 *
 * Every value here mirrors a constant of the Rust crate `packet-format`;
 * `switch-emu/tests/p4_drift.rs` parses this file and fails when the two
 * disagree, so change both sides together.
 */
#ifndef _INA_CONFIGURATION_P4_
#define _INA_CONFIGURATION_P4_

// UDP port of the aggregation service: 0xBEE0 (48864), as SwitchML.
// packet-format: UDP_PORT.
const bit<16> INA_UDP_PORT = 0xBEE0;

// Protocol version carried in every header; others are dropped (bad_version).
// packet-format: VERSION.
const bit<8> INA_VERSION = 1;

// Message types (packet-format: agg::MsgType).
const bit<8> MSG_CONTRIBUTION = 1;
const bit<8> MSG_RESULT = 2;

// "No exponent" marker: i16::MIN, so that a max over workers ignores it.
// packet-format: NO_EXPONENT.
const bit<16> NO_EXPONENT = 0x8000;

// Slots per pipe (register entries per set). 8192 x 2 sets of 32 pair
// registers (64 x 32-bit lanes) is 4 MiB of sums, which is what the stateful
// ALUs' SRAM of one Tofino pipe holds next to the other tables.
// packet-format: TOFINO_SLOTS.
#define INA_SLOTS 8192

// Register entries for state kept per (slot, set): set ++ slot.
#define INA_POOL_SIZE 16384

// Elements aggregated in one pipeline pass: 32 stateful pair registers of
// 2 x 32 bit each (4 per stage over 8 stages of the 12 of a Tofino 1 pipe).
// packet-format: TOFINO_ELEMENTS_PER_PACKET.
#define INA_ELEMENTS_PER_PASS 64

// Workers per job: the width of the contribution bitmap register (32 bit).
// packet-format: TOFINO_MAX_WORKERS.
#define INA_MAX_WORKERS 32

// Entries of the admission (worker) table: one per (job, rank). 2048 jobs'
// worth of full 32-worker jobs would not fit anyway; 4096 ranks is a SRAM
// budget of one exact-match table (job 16 + rank 16 + IPv4 32 + port 16 bit).
#define INA_WORKER_TABLE_SIZE 4096

// Entries of the egress address table: one per (job, rank) as above.
#define INA_RESULT_ADDR_TABLE_SIZE 4096

// Entries of the lease table: one (job id, slot range) per job. The lease
// check is a range match rather than arithmetic so that it is decided in
// the same stage as the worker table (Tofino stage budget, README).
#define INA_LEASE_TABLE_SIZE 1024

// L2 forwarding entries for non-aggregation traffic.
#define INA_L2_TABLE_SIZE 1024

// Number of drop reason counters (see DROP_* in types.p4).
#define INA_DROP_REASONS 16

// Tofino 1: the pipe-local recirculation port is port 68 of each pipe.
#define INA_RECIRC_PORT_LOCAL 68

#endif  // _INA_CONFIGURATION_P4_
