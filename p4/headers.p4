/* Headers shared by the Tofino program and its BMv2 twin.
 *
 * The aggregation header follows packet-format's table (crate docs of
 * packet-format/src/lib.rs) field by field; the drift guard
 * (switch-emu/tests/p4_drift.rs) checks names, widths and order.
 */
#ifndef _INA_HEADERS_P4_
#define _INA_HEADERS_P4_

#include "types.p4"

header ethernet_h {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    ether_type_t ether_type;
}

// ARP for Ethernet/IPv4 (the only kind the switch answers).
header arp_h {
    bit<16> htype;
    bit<16> ptype;
    bit<8> hlen;
    bit<8> plen;
    bit<16> oper;
    mac_addr_t sha;
    ipv4_addr_t spa;
    mac_addr_t tha;
    ipv4_addr_t tpa;
}

header ipv4_h {
    bit<4> version;
    bit<4> ihl;
    bit<8> diffserv;
    bit<16> total_len;
    bit<16> identification;
    bit<3> flags;
    bit<13> frag_offset;
    bit<8> ttl;
    bit<8> protocol;
    bit<16> hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

// ICMP echo request/reply (BMv2 twin only); the rest of the message
// (identifier, sequence, data) passes through unparsed.
header icmp_h {
    bit<8> type;
    bit<8> code;
    bit<16> checksum;
}

header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

// Aggregation header, version 1, 24 bytes, big-endian.
header agg_h {
    bit<8> version;
    bit<8> msg_type;
    bit<8> set;
    bit<8> flags;
    bit<16> job_id;
    bit<16> rank;
    bit<32> key;
    bit<32> seq;
    bit<16> slot;
    bit<16> elem_count;
    bit<16> exponent;
    bit<16> reserved;
}

// Payload: up to INA_ELEMENTS_PER_PASS (64) elements. The parsers cannot
// extract a variable number of words into one header, so the payload is cut
// into power-of-two chunks selected by the bits of elem_count
// (32, 16, 8, 4, 2, 1), and a 64-element payload is 32+16+8+4+2+1+1 (d1x).
// Every element therefore has one fixed field (its "lane"), and all
// contributions to one round have the same elem_count (length check), so
// the same lanes line up in every packet of a round. Wire order is
// d32, d16, d8, d4, d2, d1, d1x.
header data32_h {
    value_t e00;
    value_t e01;
    value_t e02;
    value_t e03;
    value_t e04;
    value_t e05;
    value_t e06;
    value_t e07;
    value_t e08;
    value_t e09;
    value_t e10;
    value_t e11;
    value_t e12;
    value_t e13;
    value_t e14;
    value_t e15;
    value_t e16;
    value_t e17;
    value_t e18;
    value_t e19;
    value_t e20;
    value_t e21;
    value_t e22;
    value_t e23;
    value_t e24;
    value_t e25;
    value_t e26;
    value_t e27;
    value_t e28;
    value_t e29;
    value_t e30;
    value_t e31;
}

header data16_h {
    value_t e00;
    value_t e01;
    value_t e02;
    value_t e03;
    value_t e04;
    value_t e05;
    value_t e06;
    value_t e07;
    value_t e08;
    value_t e09;
    value_t e10;
    value_t e11;
    value_t e12;
    value_t e13;
    value_t e14;
    value_t e15;
}

header data8_h {
    value_t e00;
    value_t e01;
    value_t e02;
    value_t e03;
    value_t e04;
    value_t e05;
    value_t e06;
    value_t e07;
}

header data4_h {
    value_t e00;
    value_t e01;
    value_t e02;
    value_t e03;
}

header data2_h {
    value_t e00;
    value_t e01;
}

header data1_h {
    value_t e00;
}

// Carried in front of the frame from ingress to egress (Tofino bridged
// metadata) and across a recirculation; never leaves the switch.
header ina_bridge_h {
    bit<8> kind;           // KIND_*
    bit<8> drop_reason;
    bit<16> mgid;
    bit<16> pool;          // pool_index_t in the low 14 bits
    bit<7> pad0;
    bit<9> ingress_port;
}

struct headers_t {
    ina_bridge_h bridge;
    ethernet_h ethernet;
    arp_h arp;
    ipv4_h ipv4;
    icmp_h icmp;
    udp_h udp;
    agg_h agg;
    data32_h d32;
    data16_h d16;
    data8_h d8;
    data4_h d4;
    data2_h d2;
    data1_h d1;
    data1_h d1x;
}

#endif  // _INA_HEADERS_P4_
