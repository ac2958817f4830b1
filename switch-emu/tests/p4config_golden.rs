//! The generator's output for a 4-worker job against golden files, and every
//! name it writes against the P4 sources. Set INA_UPDATE_GOLDEN=1 to rewrite
//! the golden files after a deliberate change (and review the diff).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use switch_emu::p4config::{self, JobFile, Target};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn job_file() -> JobFile {
    let text = std::fs::read_to_string(root().join("tests/golden/job4.json")).expect("job4.json");
    serde_json::from_str(&text).expect("job4.json parses")
}

fn check_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("INA_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

#[test]
fn bmv2_command_file_matches_golden() {
    let out = p4config::generate(&job_file(), Target::Bmv2).expect("generate");
    check_golden("job4.bmv2.txt", &out);
}

#[test]
fn tofino_script_matches_golden() {
    let out = p4config::generate(&job_file(), Target::Tofino).expect("generate");
    check_golden("job4.tofino.py", &out);
}

#[test]
fn invalid_jobs_are_rejected() {
    let mut f = job_file();
    f.jobs[0].slot_base = 8190; // 8190 + 4 > 8192
    assert!(p4config::generate(&f, Target::Bmv2).is_err());

    let mut f = job_file();
    let extra = f.jobs[0].ranks[0].clone();
    f.jobs[0].ranks.extend(std::iter::repeat_n(extra, 30)); // 34 ranks, and repeated addresses
    assert!(p4config::generate(&f, Target::Bmv2).is_err());

    let mut f = job_file();
    f.jobs[0].ranks[3].switch_port = 130; // another Tofino pipe
    assert!(p4config::generate(&f, Target::Tofino).is_err());
    assert!(p4config::generate(&f, Target::Bmv2).is_ok());

    let mut f = job_file();
    let mut second = f.jobs[0].clone();
    second.id = 4;
    second.slot_base = 18; // overlaps 16..20
    f.jobs.push(second);
    assert!(p4config::generate(&f, Target::Bmv2).is_err());

    assert!(p4config::generate_from_json("{\"switch\": 1}", Target::Bmv2).is_err());
}

// ---- the P4 sources as a map of control name -> body --------------------

struct P4 {
    controls: BTreeMap<String, String>,
    types: String,
}

/// The text from `open` (an index of '{') to its matching '}'.
fn block(text: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &text[open..open + i + 1];
                }
            }
            _ => {}
        }
    }
    &text[open..]
}

impl P4 {
    fn load(files: &[&str]) -> P4 {
        let mut controls = BTreeMap::new();
        let mut all = String::new();
        for f in files {
            let text = std::fs::read_to_string(root().join("../p4").join(f)).expect("p4 source");
            all.push_str(&text);
            all.push('\n');
        }
        let mut at = 0;
        while let Some(i) = all[at..].find("\ncontrol ") {
            let start = at + i + "\ncontrol ".len();
            let name: String = all[start..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // The body starts at the first '{' after the parameter list.
            let params_end = start + all[start..].find(')').expect("control params");
            let open = params_end + all[params_end..].find('{').expect("control body");
            controls.insert(name, block(&all, open).to_string());
            at = open;
        }
        P4 {
            controls,
            types: std::fs::read_to_string(root().join("../p4/types.p4")).expect("types.p4"),
        }
    }

    /// Follows `Ctl.instance.instance...` to the body of the last control.
    fn resolve(&self, path: &[&str]) -> &str {
        let mut body = self
            .controls
            .get(path[0])
            .unwrap_or_else(|| panic!("control {} not in the P4 sources", path[0]));
        for inst in &path[1..] {
            let decl = format!("() {inst};");
            let line = body
                .lines()
                .find(|l| l.trim_end().ends_with(&decl))
                .unwrap_or_else(|| panic!("no instance {inst} in {path:?}"));
            let ty = line.trim().split("()").next().unwrap_or("").trim();
            body = self
                .controls
                .get(ty)
                .unwrap_or_else(|| panic!("control {ty} (of {inst}) not found"));
        }
        body
    }

    fn table<'a>(&'a self, body: &'a str, name: &str) -> &'a str {
        let at = body
            .find(&format!("table {name} {{"))
            .unwrap_or_else(|| panic!("no table {name}"));
        block(body, at + body[at..].find('{').unwrap_or(0))
    }

    fn action_params(&self, body: &str, name: &str) -> Vec<String> {
        let at = body
            .find(&format!("action {name}("))
            .unwrap_or_else(|| panic!("no action {name}"));
        let rest = &body[at + format!("action {name}(").len()..];
        let params = &rest[..rest.find(')').unwrap_or(0)];
        params
            .split(',')
            .filter_map(|p| p.split_whitespace().last().map(str::to_string))
            .collect()
    }

    /// A table with a ternary or range key (its entries carry a priority).
    fn needs_priority(&self, table: &str) -> bool {
        table.contains(": ternary") || table.contains(": range")
    }

    /// Names of the key fields as BF Runtime spells them in `bfrt_python`:
    /// a range key `k` is given as `k_start` and `k_end`.
    fn bfrt_keys(&self, table: &str) -> Vec<String> {
        let mut out = Vec::new();
        let keys = match table.find("key = {") {
            Some(at) => block(table, at + "key = ".len()),
            None => "",
        };
        for line in keys.lines().filter(|l| l.contains(':')) {
            let name = match line.split_once("@name(\"") {
                Some((_, rest)) => rest.split('"').next().unwrap_or("").to_string(),
                None => line
                    .trim()
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string(),
            };
            if line.contains(": range") {
                out.push(format!("{name}_start"));
                out.push(format!("{name}_end"));
            } else if line.contains(": exact") || line.contains(": ternary") {
                out.push(name);
            }
        }
        if self.needs_priority(table) {
            out.push("MATCH_PRIORITY".into());
        }
        out
    }

    fn table_keys(&self, table: &str) -> Vec<String> {
        let Some(at) = table.find("key = {") else {
            return Vec::new();
        };
        let keys = block(table, at + "key = ".len());
        keys.lines()
            .filter(|l| l.contains(':'))
            .map(|l| match l.split_once("@name(\"") {
                Some((_, rest)) => rest.split('"').next().unwrap_or("").to_string(),
                None => l.trim().split(':').next().unwrap_or("").trim().to_string(),
            })
            .collect()
    }

    /// Register declared in `body`; returns its value type.
    fn register_type(&self, body: &str, name: &str) -> String {
        let line = body
            .lines()
            .map(str::trim)
            .find(|l| {
                (l.starts_with("register<") || l.starts_with("Register<"))
                    && l.ends_with(&format!(" {name};"))
            })
            .unwrap_or_else(|| panic!("no register {name}"));
        let inner = &line[line.find('<').unwrap_or(0) + 1..];
        inner
            .split([',', '>'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    }

    fn struct_fields(&self, ty: &str) -> Option<BTreeSet<String>> {
        let at = self.types.find(&format!("struct {ty} {{"))?;
        let body = block(&self.types, at + self.types[at..].find('{')?);
        Some(
            body.lines()
                .map(|l| l.split("//").next().unwrap_or("").trim())
                .filter(|l| l.ends_with(';'))
                .filter_map(|l| {
                    l.trim_end_matches(';')
                        .split_whitespace()
                        .last()
                        .map(str::to_string)
                })
                .collect(),
        )
    }
}

fn split_path(name: &str) -> Vec<&str> {
    name.split('.').collect()
}

#[test]
fn bmv2_names_exist_in_the_twin() {
    let p4 = P4::load(&[
        "bmv2/ina_v1model.p4",
        "admission.p4",
        "arp_icmp.p4",
        "forwarding.p4",
        "result_sender.p4",
    ]);
    let out = p4config::generate(&job_file(), Target::Bmv2).expect("generate");
    let mut checked = 0;
    for line in out.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[0] {
            "table_add" | "table_set_default" => {
                let table_path = split_path(words[1]);
                let action_path = split_path(words[2]);
                let (tname, tctl) = table_path.split_last().expect("table path");
                let (aname, actl) = action_path.split_last().expect("action path");
                assert_eq!(tctl, actl, "{line}: action from another control");
                let body = p4.resolve(tctl);
                let table = p4.table(body, tname);
                assert!(
                    table.contains(&format!("{aname};")),
                    "{line}: {aname} not an action of {tname}"
                );
                let params = p4.action_params(body, aname);
                let keys = p4.table_keys(table);
                let (key_words, mut param_words) = match words.iter().position(|w| *w == "=>") {
                    Some(i) => (words[3..i].len(), words[i + 1..].len()),
                    None => (0, words[3..].len()),
                };
                // Ternary and range tables take a priority after the parameters.
                if words[0] == "table_add" && p4.needs_priority(table) {
                    param_words -= 1;
                }
                if words[0] == "table_add" {
                    assert_eq!(key_words, keys.len(), "{line}: key count");
                }
                assert_eq!(param_words, params.len(), "{line}: parameter count");
                checked += 1;
            }
            "register_write" => {
                let path = split_path(words[1]);
                let (name, ctl) = path.split_last().expect("register path");
                p4.register_type(p4.resolve(ctl), name);
                let index: u32 = words[2].parse().expect("index");
                assert!(index < 2 * u32::from(packet_format::TOFINO_SLOTS));
                checked += 1;
            }
            "mc_mgrp_create" | "mc_node_create" | "mc_node_associate" => checked += 1,
            other => panic!("unexpected command {other}"),
        }
    }
    assert!(checked > 0);
    // Results are replicated by the PRE and addressed by replication id.
    let twin = &p4.controls["IngressImpl"];
    assert!(twin.contains("sm.mcast_grp = md.mgid"));
    assert!(p4.controls["EgressImpl"].contains("sm.egress_rid"));
}

#[test]
fn tofino_names_exist_in_the_program() {
    let p4 = P4::load(&[
        "ina.p4",
        "admission.p4",
        "round_checker.p4",
        "bitmap_checker.p4",
        "worker_counter.p4",
        "exponent_max.p4",
        "aggregation.p4",
        "next_step.p4",
        "result_sender.p4",
        "arp_icmp.p4",
        "forwarding.p4",
    ]);
    let out = p4config::generate(&job_file(), Target::Tofino).expect("generate");
    let mut checked = 0;
    for line in out.lines() {
        let Some(at) = line.find("p4.") else { continue };
        let call = &line[at + 3..];
        let (target, args) = call.split_once('(').expect("call");
        let args = args.trim_end_matches(')');
        let kwargs: BTreeSet<String> = args
            .split(',')
            .filter_map(|a| a.split_once('=').map(|(k, _)| k.trim().to_string()))
            .collect();
        let path = split_path(target);
        let (method, object) = path.split_last().expect("method");
        let (name, ctl) = object.split_last().expect("object");
        let body = p4.resolve(ctl);
        if let Some(action) = method
            .strip_prefix("add_with_")
            .or_else(|| method.strip_prefix("set_default_with_"))
        {
            let table = p4.table(body, name);
            assert!(
                table.contains(&format!("{action};")),
                "{line}: {action} not an action of {name}"
            );
            let mut known: BTreeSet<String> = p4.action_params(body, action).into_iter().collect();
            if method.starts_with("add_with_") {
                known.extend(p4.bfrt_keys(table));
            }
            assert!(
                kwargs.is_subset(&known),
                "{line}: unknown fields {:?}",
                kwargs.difference(&known).collect::<Vec<_>>()
            );
        } else if *method == "mod" {
            let ty = p4.register_type(body, name);
            let mut known = p4
                .struct_fields(&ty)
                .unwrap_or_else(|| ["f1".to_string()].into());
            known.insert("REGISTER_INDEX".into());
            assert!(
                kwargs.is_subset(&known),
                "{line}: unknown register fields {kwargs:?}"
            );
        } else {
            panic!("{line}: unexpected method {method}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} names checked");
    assert!(out.contains("p4 = bfrt.ina.pipe"));
    // Multicast results carry the rank as replication id; egress reads it.
    assert!(p4.controls["Egress"].contains("eg_intr_md.egress_rid"));
    assert!(p4.controls["NextStep"].contains("ig_tm_md.mcast_grp_a = md.mgid"));
}

#[test]
fn a_misspelt_name_fails_the_check() {
    let p4 = P4::load(&["bmv2/ina_v1model.p4", "admission.p4"]);
    let body = p4.resolve(&["IngressImpl", "admission"]);
    assert!(std::panic::catch_unwind(|| p4.table(body, "worker")).is_err());
    assert!(std::panic::catch_unwind(|| p4.resolve(&["IngressImpl", "admision"])).is_err());
    assert!(
        std::panic::catch_unwind(|| p4.register_type(p4.resolve(&["IngressImpl"]), "bitmaps"))
            .is_err()
    );
}
