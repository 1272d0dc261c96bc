//! `lti-loadgen`: the Rust side of `bench/run.sh`.
//!
//! ```text
//! lti-loadgen fixture DIR                 # the shared payloads every implementation uses
//! lti-loadgen inproc DIR REPS MILLIS      # our in-process workloads, one JSON line each
//! lti-loadgen e2e LTI_BIN DIR REPS CYCLES # login+launch over loopback HTTP against `lti serve`
//! lti-loadgen e2e-ltijs SCRIPT DIR REPS CYCLES # the same against the ltijs tool server
//! ```
//!
//! Every result is one JSON line on stdout:
//! `{"workload": ..., "impl": ..., "unit": "ops/s", "reps": [..]}` (plus latency
//! fields for `e2e`). `bench/report.py` turns them into `docs/performance.md`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod e2e;
mod fixture;
mod inproc;

use std::path::PathBuf;
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: lti-loadgen fixture DIR | inproc DIR REPS MILLIS | e2e LTI_BIN DIR REPS CYCLES | e2e-ltijs SCRIPT DIR REPS CYCLES"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize| -> Option<u64> { args.get(i)?.parse().ok() };
    match args.first().map(String::as_str) {
        Some("fixture") if args.len() == 2 => {
            fixture::write(&PathBuf::from(&args[1]));
            ExitCode::SUCCESS
        }
        Some("inproc") if args.len() == 4 => match (num(2), num(3)) {
            (Some(reps), Some(ms)) => {
                inproc::run(&PathBuf::from(&args[1]), reps as usize, ms);
                ExitCode::SUCCESS
            }
            _ => usage(),
        },
        Some(mode @ ("e2e" | "e2e-ltijs")) if args.len() == 5 => match (num(3), num(4)) {
            (Some(reps), Some(cycles)) => {
                let server = PathBuf::from(&args[1]);
                e2e::run(
                    if mode == "e2e" {
                        e2e::ToolServer::LtiServe(&server)
                    } else {
                        e2e::ToolServer::Ltijs(&server)
                    },
                    &PathBuf::from(&args[2]),
                    reps as usize,
                    cycles as usize,
                );
                ExitCode::SUCCESS
            }
            _ => usage(),
        },
        _ => usage(),
    }
}

/// Prints one result line.
pub(crate) fn emit(workload: &str, imp: &str, reps: &[f64], extra: serde_json::Value) {
    let mut line = serde_json::json!({
        "workload": workload, "impl": imp, "unit": "ops/s", "reps": reps,
    });
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    println!("{line}");
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
