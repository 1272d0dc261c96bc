//! The load shape shared by the throughput bench and the SQLite cost
//! counter: operations split over concurrent tasks on a 2-worker runtime.

use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Concurrent tasks per measurement.
pub(crate) const TASKS: u64 = 8;

/// The runtime every concurrent measurement runs on: 2 worker threads.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `iters` operations split over `TASKS` concurrent tasks and returns the
/// elapsed time. Operation `t * 1e9 + i` is task `t`'s `i`-th.
pub(crate) fn run_concurrent<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    rt.block_on(async move {
        let start = Instant::now();
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let op = op.clone();
            let n = iters / TASKS + u64::from(t < iters % TASKS);
            handles.push(tokio::spawn(async move {
                for i in 0..n {
                    op(t * 1_000_000_000 + i).await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        start.elapsed()
    })
}
