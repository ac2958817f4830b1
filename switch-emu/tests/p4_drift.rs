//! Drift guard: the constants of the P4 sources in `p4/` must equal the
//! Rust ones in `packet-format`. Each negative case feeds a mutated copy of
//! the P4 text and expects the comparison to fail.

use std::collections::BTreeMap;
use std::path::PathBuf;

use packet_format::agg::{MsgType, FIELDS};

fn p4_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../p4")
}

fn read(name: &str) -> String {
    let path = p4_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The P4 texts the guard reads.
#[derive(Clone)]
struct Sources {
    configuration: String,
    types: String,
    headers: String,
}

impl Sources {
    fn load() -> Self {
        Sources {
            configuration: read("configuration.p4"),
            types: read("types.p4"),
            headers: read("headers.p4"),
        }
    }
}

fn strip_comment(line: &str) -> &str {
    line.split("//").next().unwrap_or("").trim()
}

fn parse_int(text: &str) -> Option<u64> {
    let t = text.trim().trim_end_matches(';').trim();
    // Width-prefixed literals such as 16w0x0800.
    let t = match t.find('w') {
        Some(i) if t[..i].chars().all(|c| c.is_ascii_digit()) && i > 0 => &t[i + 1..],
        _ => t,
    };
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse().ok()
    }
}

/// `const bit<N> NAME = VALUE;` and `#define NAME VALUE` -> (NAME, (width, VALUE)).
fn constants(text: &str) -> BTreeMap<String, (Option<u32>, u64)> {
    let mut out = BTreeMap::new();
    for raw in text.lines() {
        let line = strip_comment(raw);
        if let Some(rest) = line.strip_prefix("#define ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(value)) = (parts.next(), parts.next()) {
                if let Some(v) = parse_int(value) {
                    out.insert(name.to_string(), (None, v));
                }
            }
        } else if let Some(rest) = line.strip_prefix("const bit<") {
            let Some((width, rest)) = rest.split_once('>') else {
                continue;
            };
            let Some((name, value)) = rest.split_once('=') else {
                continue;
            };
            if let (Ok(w), Some(v)) = (width.parse(), parse_int(value)) {
                out.insert(name.trim().to_string(), (Some(w), v));
            }
        }
    }
    out
}

/// Fields `(name, bits)` of `header NAME { ... }`, in order.
fn header_fields(text: &str, header: &str) -> Option<Vec<(String, u32)>> {
    let start = text.find(&format!("header {header} {{"))?;
    let body = &text[start..];
    let end = body.find('}')?;
    let mut fields = Vec::new();
    for raw in body[..end].lines().skip(1) {
        let line = strip_comment(raw);
        if line.is_empty() {
            continue;
        }
        let (ty, name) = line.trim_end_matches(';').rsplit_once(' ')?;
        let bits = if let Some(w) = ty.trim().strip_prefix("bit<") {
            w.trim_end_matches('>').parse().ok()?
        } else {
            typedef_width(text, ty.trim())?
        };
        fields.push((name.trim().to_string(), bits));
    }
    Some(fields)
}

fn typedef_width(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|raw| {
        let line = strip_comment(raw);
        let rest = line.strip_prefix("typedef bit<")?;
        let (w, n) = rest.split_once('>')?;
        (n.trim().trim_end_matches(';').trim() == name).then(|| w.parse().ok())?
    })
}

/// Compares the P4 texts with packet-format; one message per disagreement.
fn compare(src: &Sources) -> Vec<String> {
    let mut errors = Vec::new();
    let c = constants(&format!("{}\n{}", src.configuration, src.types));
    let mut expect = |name: &str, width: Option<u32>, value: u64| match c.get(name) {
        None => errors.push(format!("{name} not found in the P4 sources")),
        Some(&(w, v)) => {
            if v != value {
                errors.push(format!("{name} = {v} in P4, {value} in packet-format"));
            }
            if width.is_some() && w != width {
                errors.push(format!("{name} has width {w:?} in P4, {width:?} expected"));
            }
        }
    };
    expect("INA_UDP_PORT", Some(16), u64::from(packet_format::UDP_PORT));
    expect("INA_VERSION", Some(8), u64::from(packet_format::VERSION));
    expect(
        "MSG_CONTRIBUTION",
        Some(8),
        u64::from(u8::from(MsgType::Contribution)),
    );
    expect("MSG_RESULT", Some(8), u64::from(u8::from(MsgType::Result)));
    expect(
        "NO_EXPONENT",
        Some(16),
        u64::from(packet_format::NO_EXPONENT as u16),
    );
    expect("INA_SLOTS", None, u64::from(packet_format::TOFINO_SLOTS));
    expect(
        "INA_POOL_SIZE",
        None,
        2 * u64::from(packet_format::TOFINO_SLOTS),
    );
    expect(
        "INA_ELEMENTS_PER_PASS",
        None,
        u64::from(packet_format::TOFINO_ELEMENTS_PER_PACKET),
    );
    expect(
        "INA_MAX_WORKERS",
        None,
        u64::from(packet_format::TOFINO_MAX_WORKERS),
    );

    // Index and bitmap widths follow the sizes.
    let slots = u64::from(packet_format::TOFINO_SLOTS);
    let width_of = |name: &str| typedef_width(&src.types, name);
    if width_of("worker_bitmap_t") != Some(u32::from(packet_format::TOFINO_MAX_WORKERS)) {
        errors.push("worker_bitmap_t is not TOFINO_MAX_WORKERS bits wide".into());
    }
    if width_of("slot_index_t").map(|w| 1u64 << w) != Some(slots) {
        errors.push("slot_index_t does not index exactly TOFINO_SLOTS slots".into());
    }
    if width_of("pool_index_t").map(|w| 1u64 << w) != Some(2 * slots) {
        errors.push("pool_index_t does not index exactly 2 x TOFINO_SLOTS".into());
    }
    if width_of("value_t") != Some(8 * packet_format::ELEMENT_LEN as u32) {
        errors.push("value_t is not ELEMENT_LEN bytes wide".into());
    }

    // Header types may use typedefs of types.p4.
    let all = format!("{}\n{}", src.headers, src.types);

    // The aggregation header, field by field.
    match header_fields(&all, "agg_h") {
        None => errors.push("header agg_h not found or not parsable".into()),
        Some(fields) => {
            let mut offset = 0usize;
            let mut p4 = Vec::new();
            for (name, bits) in &fields {
                if bits % 8 != 0 {
                    errors.push(format!("agg_h.{name} is {bits} bits, not whole bytes"));
                }
                p4.push((name.clone(), offset, *bits as usize / 8));
                offset += *bits as usize / 8;
            }
            let rust: Vec<(String, usize, usize)> = FIELDS
                .iter()
                .map(|&(n, o, l)| (n.to_string(), o, l))
                .collect();
            if p4 != rust {
                errors.push(format!(
                    "agg_h fields {p4:?} differ from packet-format {rust:?}"
                ));
            }
            if offset != packet_format::HEADER_LEN {
                errors.push(format!(
                    "agg_h is {offset} bytes, HEADER_LEN is {}",
                    packet_format::HEADER_LEN
                ));
            }
        }
    }

    // The payload chunks of a full packet hold exactly the elements of one pass.
    let chunk = |h: &str| header_fields(&all, h).map(|f| f.len()).unwrap_or(0);
    let full = chunk("data32_h")
        + chunk("data16_h")
        + chunk("data8_h")
        + chunk("data4_h")
        + chunk("data2_h")
        + 2 * chunk("data1_h");
    if full != usize::from(packet_format::TOFINO_ELEMENTS_PER_PACKET) {
        errors.push(format!(
            "payload chunks hold {full} elements, not TOFINO_ELEMENTS_PER_PACKET"
        ));
    }
    errors
}

#[test]
fn p4_constants_match_packet_format() {
    let errors = compare(&Sources::load());
    assert!(
        errors.is_empty(),
        "P4 and packet-format disagree:\n{}",
        errors.join("\n")
    );
}

#[test]
fn twin_shares_headers_and_configuration() {
    let twin = read("bmv2/ina_v1model.p4");
    for include in ["../configuration.p4", "../types.p4", "../headers.p4"] {
        assert!(
            twin.contains(&format!("#include \"{include}\"")),
            "twin does not include {include}"
        );
    }
    assert!(
        !twin.contains("header agg_h"),
        "twin must not define its own agg_h"
    );
    assert!(
        !twin.contains("INA_UDP_PORT ="),
        "twin must not define its own UDP port"
    );
}

fn assert_detects(mutate: impl Fn(&mut Sources), what: &str) {
    let mut src = Sources::load();
    let before = src.headers.clone() + &src.configuration + &src.types;
    mutate(&mut src);
    assert_ne!(
        before,
        src.headers.clone() + &src.configuration + &src.types,
        "mutation '{what}' changed nothing"
    );
    assert!(
        !compare(&src).is_empty(),
        "mutation '{what}' went unnoticed"
    );
}

#[test]
fn changed_udp_port_is_detected() {
    assert_detects(
        |s| {
            s.configuration = s
                .configuration
                .replace("INA_UDP_PORT = 0xBEE0", "INA_UDP_PORT = 0xBEE1")
        },
        "udp port",
    );
}

#[test]
fn changed_message_type_is_detected() {
    assert_detects(
        |s| s.configuration = s.configuration.replace("MSG_RESULT = 2", "MSG_RESULT = 3"),
        "message type",
    );
}

#[test]
fn changed_slot_count_is_detected() {
    assert_detects(
        |s| {
            s.configuration = s
                .configuration
                .replace("#define INA_SLOTS 8192", "#define INA_SLOTS 4096")
        },
        "slots",
    );
}

#[test]
fn changed_elements_per_pass_is_detected() {
    assert_detects(
        |s| {
            s.configuration = s.configuration.replace(
                "#define INA_ELEMENTS_PER_PASS 64",
                "#define INA_ELEMENTS_PER_PASS 128",
            )
        },
        "elements",
    );
}

#[test]
fn swapped_header_fields_are_detected() {
    assert_detects(
        |s| {
            s.headers = s.headers.replace(
                "    bit<16> job_id;\n    bit<16> rank;",
                "    bit<16> rank;\n    bit<16> job_id;",
            )
        },
        "field order",
    );
}

#[test]
fn changed_field_width_is_detected() {
    assert_detects(
        |s| s.headers = s.headers.replace("    bit<32> seq;", "    bit<16> seq;"),
        "field width",
    );
}

#[test]
fn changed_bitmap_width_is_detected() {
    assert_detects(
        |s| {
            s.types = s.types.replace(
                "typedef bit<32> worker_bitmap_t;",
                "typedef bit<64> worker_bitmap_t;",
            )
        },
        "bitmap width",
    );
}
