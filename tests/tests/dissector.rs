//! The Wireshark dissector (`tools/wireshark/ina.lua`) against a capture
//! of a real run: `switch-emu serve --pcap` with two jobs (int32 and
//! float32) of in-process agents; tshark must decode every aggregation
//! packet with the values packet-format reads from the same file.

use std::net::SocketAddr;
use std::process::Command;

use host_agent::{Agent, JoinOptions};
use ina_tests::pcapfile;
use ina_tests::procs::{workspace_dir, Switch};
use packet_format::{Packet, Repr};

fn run_job(control: SocketAddr, name: &'static str, world: u16, float: bool) {
    let workers: Vec<_> = (0..world)
        .map(|rank| {
            std::thread::spawn(move || {
                let mut opts = JoinOptions::new(name, rank, world).control(control);
                opts.window = 4;
                opts.elements_per_packet = 16;
                let mut agent = Agent::join(opts).expect("join");
                if float {
                    let mut data: Vec<f32> =
                        (0..100).map(|i| i as f32 * 0.5 + f32::from(rank)).collect();
                    agent.allreduce_f32(&mut data).expect("allreduce f32");
                } else {
                    let mut data: Vec<i32> = (0..100).map(|i| i * 3 - i32::from(rank)).collect();
                    agent.allreduce_i32(&mut data).expect("allreduce i32");
                    let want: Vec<i32> = (0..100)
                        .map(|i| (0..world).map(|r| i * 3 - i32::from(r)).sum())
                        .collect();
                    assert_eq!(data, want);
                }
                agent.leave().expect("leave");
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
}

#[test]
fn tshark_decodes_every_aggregation_packet() {
    let dir = std::env::temp_dir().join(format!("ina-dissector-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pcap = dir.join("run.pcap");
    let switch = Switch::start(&["--pcap", pcap.to_str().unwrap()]);
    let control = SocketAddr::V4(switch.control);
    let port = switch.data.port();
    let a = std::thread::spawn(move || run_job(control, "dissect-int", 2, false));
    let b = std::thread::spawn(move || run_job(control, "dissect-float", 3, true));
    a.join().unwrap();
    b.join().unwrap();
    assert!(switch.stop(), "switch-emu serve failed");

    // What packet-format reads from the capture.
    let bytes = std::fs::read(&pcap).unwrap();
    let captured = pcapfile::datagrams(&bytes).unwrap();
    let mut want = Vec::new();
    let mut saw_float = false;
    for d in &captured {
        let packet = Packet::new_checked(&d.payload[..]).expect("aggregation packet");
        let r = Repr::parse(&packet).expect("valid header");
        saw_float |= r.flags.0 & 1 != 0;
        want.push(format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.job_id,
            r.rank,
            r.slot,
            u8::from(r.set),
            r.seq,
            u8::from(r.msg_type),
            r.elem_count,
            r.exponent
        ));
    }
    // Two jobs, at least one packet each way per rank and block.
    assert!(want.len() > 50, "only {} packets captured", want.len());
    assert!(saw_float, "no float32 packet in the capture");

    // What tshark with the dissector reads. The switch ran on an ephemeral
    // port, so the dissector is bound to it with decode-as.
    let lua = workspace_dir().join("tools/wireshark/ina.lua");
    let out = Command::new("tshark")
        .arg("-r")
        .arg(&pcap)
        .arg("-X")
        .arg(format!("lua_script:{}", lua.display()))
        .args(["-d", &format!("udp.port=={port},ina")])
        .args(["-Y", "ina", "-T", "fields"])
        .args(["-e", "ina.job_id", "-e", "ina.rank", "-e", "ina.slot"])
        .args(["-e", "ina.set", "-e", "ina.seq", "-e", "ina.msg_type"])
        .args(["-e", "ina.elem_count", "-e", "ina.exponent"])
        .output()
        .expect("running tshark (installed by .ci/run)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    assert!(
        !stderr.to_lowercase().contains("lua") || !stderr.contains("rror"),
        "tshark reported a Lua problem: {stderr}"
    );
    let got: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        got.len(),
        want.len(),
        "tshark decoded {} of {} packets; stderr: {stderr}",
        got.len(),
        want.len()
    );
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(
            g,
            w,
            "packet {} (job rank slot set seq type count exponent)",
            i + 1
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
