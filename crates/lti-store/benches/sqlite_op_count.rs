//! Per-operation cost of the SQLite file backend under the throughput
//! bench's load shape (8 concurrent tasks on a 2-worker runtime), for
//! counters that are stable on a shared machine: `perf stat` task-clock and
//! context switches (all threads, kernel included) or callgrind instructions.
//!
//! Like `memory_op_count`, this target uses the default libtest harness and
//! does nothing unless driven by environment variables:
//! `LTI_COUNT_OP=<nonce|save|state|launch> LTI_COUNT_N=<n> [LTI_COUNT_POOL=<size>]`
//! opens a fresh WAL database in the temp directory (pool of 8 by default)
//! and performs `n` operations (`state` = save then consume, so a consume
//! costs `state` minus `save`; `launch` = the store work of one login and
//! launch of `lti serve` with a stateless login: the registration read twice,
//! the nonce recorded, ~3 KB of launch data saved). The cost of one operation is
//! `(cost(n) - cost(0)) / n`, for example
//! `LTI_COUNT_OP=nonce LTI_COUNT_N=20000 perf stat -e task-clock,context-switches
//! <bench binary> count_sqlite_ops --exact --test-threads=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(feature = "sqlite")]
mod common;
#[cfg(feature = "sqlite")]
mod concurrent;
#[cfg(feature = "sqlite")]
mod op_count;

#[cfg(feature = "sqlite")]
#[test]
fn count_sqlite_ops() {
    use lti_registry::Clock as _;
    use lti_store::{OpenOptions, open};

    let Some((op, n)) = op_count::request() else {
        return;
    };
    let pool = std::env::var("LTI_COUNT_POOL")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(8);
    let options = OpenOptions::new(common::bench_cipher()).with_pool_size(pool);
    let path = std::env::temp_dir().join(format!("lti-count-{}.db", std::process::id()));
    let url = format!("sqlite://{}", path.display());
    let rt = concurrent::runtime();
    let store = rt.block_on(open(&url, &options)).unwrap();
    let now = lti_registry::SystemClock.now();
    match op.as_str() {
        "nonce" => {
            let s = store.clone();
            concurrent::run_concurrent(&rt, n, move |i| {
                let s = s.clone();
                async move {
                    s.nonces
                        .record_nonce("https://i", &format!("nonce-{i}"), now + 600)
                        .await
                        .unwrap();
                }
            });
        }
        "save" | "state" => {
            let s = store.clone();
            concurrent::run_concurrent(&rt, n, move |i| {
                let s = s.clone();
                async move {
                    let st = common::bench_state(format!("state-{i}"), now);
                    s.launch_states.save_state(&st).await.unwrap();
                }
            });
            if op == "state" {
                let s = store.clone();
                concurrent::run_concurrent(&rt, n, move |i| {
                    let s = s.clone();
                    async move {
                        s.launch_states
                            .consume_state(&format!("state-{i}"))
                            .await
                            .unwrap();
                    }
                });
            }
        }
        "launch" => {
            let mut reg = lti_registry::PlatformRegistration::new(
                "https://i",
                "c",
                "https://i/auth",
                "https://i/token",
                lti_registry::KeySource::JwksUrl {
                    url: "https://i/jwks".into(),
                },
            );
            reg.deployments.push(lti_registry::Deployment::with_status(
                "d1",
                lti_registry::DeploymentStatus::Active,
                now,
            ));
            rt.block_on(store.registrations.insert_registration(&reg))
                .unwrap();
            let data = common::bench_launch_data();
            let s = store.clone();
            concurrent::run_concurrent(&rt, n, move |i| {
                let (s, data) = (s.clone(), data.clone());
                async move {
                    s.registrations
                        .get_registration("https://i", "c")
                        .await
                        .unwrap();
                    s.registrations
                        .get_registration("https://i", "c")
                        .await
                        .unwrap();
                    s.nonces
                        .record_nonce("https://i", &format!("nonce-{i}"), now + 600)
                        .await
                        .unwrap();
                    s.launch_data
                        .save_launch(&format!("launch-{i}"), data, now + 3600)
                        .await
                        .unwrap();
                }
            });
        }
        other => panic!("expected nonce, save, state or launch, found {other}"),
    }
    drop(store);
    drop(rt);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
