//! State-consume and nonce-record throughput per backend.
//!
//! Every measurement runs 8 concurrent tasks on a 2-worker Tokio runtime;
//! "conn1" backends have one connection, "pool8" eight. Redis and PostgreSQL
//! run only when `LTI_TEST_REDIS_URL` / `LTI_TEST_POSTGRES_URL` are set.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod concurrent;

use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lti_registry::{Clock as _, Store};
use lti_store::{OpenOptions, open};
use tokio::runtime::Runtime;

use concurrent::run_concurrent;

static SEQ: AtomicU64 = AtomicU64::new(0);

fn next_id(tag: &str) -> String {
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

fn options(pool: u32) -> OpenOptions {
    OpenOptions::new(common::bench_cipher())
        .with_pool_size(pool)
        .with_redis_key_prefix(format!("{}:", next_id("lti-bench")))
        .with_postgres_schema(next_id("lti_bench").replace('-', "_"))
}

/// `fresh`, when given, opens a new empty store for every nonce sample (the
/// memory backend: its nonce map is capacity-bounded, and criterion records
/// far more unexpired nonces than a real deployment would hold).
fn bench_store(
    c: &mut Criterion,
    rt: &Runtime,
    name: &str,
    store: Store,
    fresh: Option<&dyn Fn() -> Store>,
) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));

    group.bench_function("state_consume", |b| {
        b.iter_custom(|iters| {
            let prefix = next_id("st");
            let now = lti_registry::SystemClock.now();
            // Untimed: save the states to consume.
            let saver = store.clone();
            let p = prefix.clone();
            run_concurrent(rt, iters, move |i| {
                let (s, p) = (saver.clone(), p.clone());
                async move {
                    let st = common::bench_state(format!("{p}-{i}"), now);
                    s.launch_states.save_state(&st).await.unwrap();
                }
            });
            let consumer = store.clone();
            run_concurrent(rt, iters, move |i| {
                let (s, p) = (consumer.clone(), prefix.clone());
                async move {
                    s.launch_states
                        .consume_state(&format!("{p}-{i}"))
                        .await
                        .unwrap();
                }
            })
        });
    });

    group.bench_function("nonce_record", |b| {
        b.iter_custom(|iters| {
            let prefix = next_id("n");
            let exp = lti_registry::SystemClock.now() + 600;
            let s = fresh.map_or_else(|| store.clone(), |f| f());
            run_concurrent(rt, iters, move |i| {
                let (s, p) = (s.clone(), prefix.clone());
                async move {
                    s.nonces
                        .record_nonce("https://i", &format!("{p}-{i}"), exp)
                        .await
                        .unwrap();
                }
            })
        });
    });
    group.finish();
}

fn backends(c: &mut Criterion) {
    let rt = concurrent::runtime();

    let open_memory = || rt.block_on(open("memory://", &options(8))).unwrap();
    bench_store(c, &rt, "memory", open_memory(), Some(&open_memory));

    for pool in [1, 8] {
        let path = std::env::temp_dir().join(format!("{}.db", next_id("lti-bench")));
        let url = format!("sqlite://{}", path.display());
        let sqlite = rt.block_on(open(&url, &options(pool))).unwrap();
        bench_store(c, &rt, &format!("sqlite_file_pool{pool}"), sqlite, None);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    match std::env::var("LTI_TEST_REDIS_URL") {
        Ok(url) => {
            for pool in [1, 8] {
                let store = rt.block_on(open(&url, &options(pool))).unwrap();
                bench_store(c, &rt, &format!("redis_conn{pool}"), store, None);
            }
        }
        Err(_) => eprintln!("SKIPPED redis benches: LTI_TEST_REDIS_URL is not set"),
    }
    match std::env::var("LTI_TEST_POSTGRES_URL") {
        Ok(url) => {
            for pool in [1, 8] {
                let opts = options(pool);
                let schema = opts.postgres_schema.clone().unwrap();
                let store = rt.block_on(open(&url, &opts)).unwrap();
                bench_store(c, &rt, &format!("postgres_conn{pool}"), store, None);
                rt.block_on(async {
                    let pool = sqlx::PgPool::connect(&url).await.unwrap();
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP SCHEMA \"{schema}\" CASCADE"
                    )))
                    .execute(&pool)
                    .await
                    .unwrap();
                });
            }
        }
        Err(_) => eprintln!("SKIPPED postgres benches: LTI_TEST_POSTGRES_URL is not set"),
    }
}

criterion_group!(benches, backends);
criterion_main!(benches);
