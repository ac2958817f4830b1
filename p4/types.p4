/* Types shared by the Tofino program and its BMv2 twin (no architecture
 * specific types here: ports are plain bit<9>).
 */
#ifndef _INA_TYPES_P4_
#define _INA_TYPES_P4_

typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;

typedef bit<16> ether_type_t;
const ether_type_t ETHERTYPE_IPV4 = 16w0x0800;
const ether_type_t ETHERTYPE_ARP = 16w0x0806;

const bit<8> IP_PROTOCOL_UDP = 8w17;
const bit<8> IP_PROTOCOL_ICMP = 8w1;

const bit<8> ICMP_ECHO_REQUEST = 8w8;
const bit<8> ICMP_ECHO_REPLY = 8w0;

const bit<16> ARP_HTYPE_ETHERNET = 16w1;
const bit<16> ARP_OPER_REQUEST = 16w1;
const bit<16> ARP_OPER_REPLY = 16w2;

// One payload element: a two's-complement i32 in network byte order. The
// switch adds the words as integers and never swaps bytes.
typedef bit<32> value_t;

// Index of a slot inside one set (13 bits: INA_SLOTS = 8192).
typedef bit<13> slot_index_t;

// Index of the state of one (slot, set): set ++ slot (14 bits: INA_POOL_SIZE).
typedef bit<14> pool_index_t;

// Contribution bitmap: bit r = rank r has contributed (INA_MAX_WORKERS = 32).
typedef bit<32> worker_bitmap_t;

// Two 32-bit halves of one stateful ALU word (Tofino pair registers).
struct value_pair_t {
    value_t first;
    value_t second;
}

struct bitmap_pair_t {
    worker_bitmap_t first;   // set 0
    worker_bitmap_t second;  // set 1
}

// Per (slot, set) on Tofino (worker_counter.p4): the round's tag, which is
// 0 while the state is not valid (after reset / lease) and otherwise
// ROUND_TAG_VALID | elem_count, and the mask of ranks that joined the round.
struct round_mask_t {
    bit<32> tag;
    worker_bitmap_t joined;
}
const bit<32> ROUND_TAG_VALID = 32w0x10000;

// Drop reasons, counted per reason (index of the drop counter). The names
// follow switch-emu's DropReason::name(); UNKNOWN_WORKER covers unknown_job,
// unknown_rank and wrong_source, which one exact-match table cannot tell apart.
const bit<8> DROP_TRUNCATED = 0;
const bit<8> DROP_BAD_VERSION = 1;
const bit<8> DROP_MALFORMED = 2;
const bit<8> DROP_NOT_CONTRIBUTION = 3;
const bit<8> DROP_UNKNOWN_WORKER = 4;
const bit<8> DROP_BAD_KEY = 5;
const bit<8> DROP_SLOT_OUTSIDE_LEASE = 6;
const bit<8> DROP_TOO_MANY_ELEMENTS = 7;
const bit<8> DROP_LENGTH_MISMATCH = 8;
const bit<8> DROP_STALE_SEQUENCE = 9;
const bit<8> DROP_DUPLICATE_INCOMPLETE = 10;
const bit<8> DROP_ABSORBED = 11;  // not an error: a contribution that completed nothing
const bit<8> DROP_INTERNAL = 15;  // no decision was reached (a bug if ever counted)
const bit<8> DROP_NONE = 255;

// Outcome of the round sequence check (round_checker.p4). SEQ_OLD is 0
// because a Tofino register action outputs 0 when no branch assigned it.
const bit<8> SEQ_OLD = 0;   // valid, not newer, not equal: stale
const bit<8> SEQ_NEW = 1;   // serial-newer: a round starts
const bit<8> SEQ_SAME = 2;  // the current round

// What the aggregation processors do with a packet.
const bit<8> AGG_NONE = 0;
const bit<8> AGG_WRITE = 1;    // first contribution: overwrite the sums
const bit<8> AGG_ADD = 2;      // joins a round in progress: wrapping add unless the rank already joined
const bit<8> AGG_READ = 3;     // round already complete: read (answered if the rank's bit is still set)
const bit<8> AGG_HARVEST = 4;  // second pass: read the lanes pass 1 could not return

// All ranks joined (worker_counter.p4): the joined mask starts with the
// bits of absent ranks set, so a complete round reads all ones whatever
// the world size.
const bit<32> JOINED_ALL = 32w0xffffffff;

// Packet kinds carried from ingress to the next pass / to egress.
const bit<8> KIND_OTHER = 0;          // not aggregation traffic (ARP, L2)
const bit<8> KIND_HARVEST_MCAST = 1;  // recirculating to read the rest of a result, then multicast
const bit<8> KIND_HARVEST_UCAST = 2;  // recirculating to read the rest of a result, then unicast
const bit<8> KIND_RESULT_MCAST = 3;   // result replicated to every rank of the job
const bit<8> KIND_RESULT_UCAST = 4;   // result sent back to the retransmitting rank

// Per-packet state of the aggregation path.
struct ina_md_t {
    bit<8> drop_reason;        // DROP_NONE while the packet is still admitted
    bit<8> kind;               // KIND_*
    bool admitted;             // the worker table hit
    bool in_lease;             // the lease table hit (slot inside the job's lease)
    worker_bitmap_t worker_bit;
    worker_bitmap_t start_mask;  // worker_bit | bits of the ranks >= world (Tofino)
    bit<8> world;
    bit<16> mgid;
    bit<32> job_key;
    pool_index_t pool;         // set ++ slot
    slot_index_t slot_index;
    bit<32> round_tag;         // ROUND_TAG_VALID | elem_count of this packet
    int<32> exponent;          // the packet's exponent, sign-extended
    int<32> max_exp;           // the round's maximum exponent after this packet
    bit<8> seq_code;           // SEQ_* (Tofino)
    worker_bitmap_t joined_before;  // joined mask before this packet, 0 on a length mismatch (Tofino)
    worker_bitmap_t joined_after;   // joined_before | start_mask (Tofino)
    worker_bitmap_t already;        // joined_before & worker_bit: the rank joined this round before (Tofino)
    worker_bitmap_t bitmap_before;  // the set's seen bitmap before this packet (Tofino)
    worker_bitmap_t seen;           // bitmap_before & worker_bit (Tofino)
    bit<8> agg_op;             // AGG_*
    bool has_high_lanes;       // the 32-element chunk is present (elem_count >= 32)
}

#endif  // _INA_TYPES_P4_
