//! Instruction counting for the memory backend under callgrind (criterion
//! timings are too noisy on a shared machine).
//!
//! This target uses the default libtest harness (it has no `[[bench]]`
//! entry), so the work is the `count_ops` function, driven by environment
//! variables and doing nothing without them: `LTI_COUNT_OP=<nonce|save|state>
//! LTI_COUNT_N=<n>` performs `n` operations (`state` = save then consume, so
//! a consume costs `state` minus `save`) on one
//! current-thread runtime; the cost of one operation is
//! `(Ir(n) - Ir(0)) / n`. Run for example
//! `LTI_COUNT_OP=nonce LTI_COUNT_N=20000 valgrind --tool=callgrind
//! --callgrind-out-file=/dev/null <bench binary> count_ops --exact --test-threads=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[cfg(feature = "memory")]
mod common;
#[cfg(feature = "memory")]
mod op_count;

#[cfg(feature = "memory")]
#[test]
fn count_ops() {
    use lti_registry::{Clock as _, LaunchStateStore as _, NonceStore as _};

    let Some((op, n)) = op_count::request() else {
        return;
    };
    let store = lti_store::MemoryStore::new(common::bench_cipher(), lti_registry::system_clock());
    let now = lti_registry::SystemClock.now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        match op.as_str() {
            "nonce" => {
                let nonces: Vec<String> = (0..n).map(|i| format!("nonce-{i}")).collect();
                for nonce in &nonces {
                    store
                        .record_nonce("https://i", nonce, now + 600)
                        .await
                        .unwrap();
                }
            }
            "save" | "state" => {
                for i in 0..n {
                    let st = common::bench_state(format!("state-{i}"), now);
                    store.save_state(&st).await.unwrap();
                }
                if op == "save" {
                    return;
                }
                let ids: Vec<String> = (0..n).map(|i| format!("state-{i}")).collect();
                for id in &ids {
                    store.consume_state(id).await.unwrap();
                }
            }
            other => panic!("expected nonce or state, found {other}"),
        }
    });
}
