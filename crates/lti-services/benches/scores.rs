//! Scores per second posted through one `AgsClient` to lti-platform's AGS
//! endpoint on loopback (tests/support). The platform and the client share
//! the machine, so this measures the whole round trip, not the client alone.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures_util::{StreamExt, TryStreamExt, stream};
use lti_message::Timestamp;
use lti_message::ags::{LineItem, Score};
use support::{Options, TestPlatform};

const BATCH: u64 = 200;

fn scores(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (lms, ags, url) = rt.block_on(async {
        let lms = TestPlatform::start(Options::default()).await;
        let ags = lms.ags(&lms.services());
        let url = ags
            .create_line_item(&LineItem::new("Bench", 100.0))
            .await
            .unwrap()
            .id
            .unwrap();
        (lms, ags, url)
    });
    let clock = AtomicI64::new(1_700_000_000_000);
    let mut group = c.benchmark_group("ags_scores_loopback");
    group.throughput(Throughput::Elements(BATCH));
    for concurrency in [1usize, 8, 32] {
        group.bench_function(
            format!("post_{BATCH}_scores_concurrency_{concurrency}"),
            |b| {
                b.iter(|| {
                    let batch: Vec<Score> = (0..BATCH)
                        .map(|u| {
                            let t =
                                Timestamp::from_unix_millis(clock.fetch_add(1, Ordering::Relaxed))
                                    .unwrap();
                            Score::completed_fully_graded(format!("learner-{u}"), 7.0, 10.0, t)
                        })
                        .collect();
                    rt.block_on(
                        stream::iter(batch.iter())
                            .map(|s| ags.post_score(&url, s))
                            .buffer_unordered(concurrency)
                            .try_collect::<Vec<()>>(),
                    )
                    .unwrap();
                });
            },
        );
    }
    group.finish();
    assert_eq!(lms.token_requests(), 1);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = scores
}
criterion_main!(benches);
