//! Measures the CPU time (not wall time) of deserialize + validate, so the
//! figure stays meaningful on a busy machine. Linux only (reads
//! `/proc/thread-self/stat`, 10 ms tick resolution over 400 000 iterations).
//!
//! `cargo run --release -p lti-message --example cpu_time_probe`
#![allow(clippy::unwrap_used, clippy::expect_used)]
use lti_message::{LtiMessage, ValidationOptions};
/// User + system CPU ticks (1/100 s) of this thread.
fn cpu_ticks() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    let rest = &s[s.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}
fn main() {
    let v: serde_json::Value = serde_json::from_str(include_str!(
        "../../../tests/fixtures/lti-message/platforms/moodle.json"
    ))
    .unwrap();
    let bytes = serde_json::to_vec(&v).unwrap();
    let opts = ValidationOptions::default();
    let n = 400_000u64;
    let (t0, w0) = (cpu_ticks(), std::time::Instant::now());
    for _ in 0..n {
        std::hint::black_box(LtiMessage::from_slice(std::hint::black_box(&bytes), &opts).unwrap());
    }
    let (t1, w1) = (cpu_ticks(), w0.elapsed());
    println!(
        "from_slice+validate {} B: cpu {:.2} us/iter, wall {:.2} us/iter",
        bytes.len(),
        (t1 - t0) as f64 * 10_000.0 / n as f64,
        w1.as_secs_f64() * 1e6 / n as f64
    );
    let t0 = cpu_ticks();
    for _ in 0..n {
        std::hint::black_box(
            serde_json::from_slice::<serde_json::Value>(std::hint::black_box(&bytes)).unwrap(),
        );
    }
    println!(
        "serde_json::Value parse baseline: cpu {:.2} us/iter",
        (cpu_ticks() - t0) as f64 * 10_000.0 / n as f64
    );
}
