//! Deserialize + validate a typical resource-link launch payload.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use lti_message::{LtiMessage, ValidationOptions};
use serde_json::Value;

fn compact(text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::from_str::<Value>(text).unwrap()).unwrap()
}

fn bench(c: &mut Criterion) {
    let opts = ValidationOptions::default();
    let moodle = compact(include_str!(
        "../../../tests/fixtures/lti-message/platforms/moodle.json"
    ));
    let cert = compact(include_str!(
        "../../../tests/fixtures/lti-message/certification/valid/Launch LTI 1.3 Message as Instructor/payload.json"
    ));
    assert!(matches!(
        LtiMessage::from_slice(&moodle, &opts),
        Ok(LtiMessage::ResourceLink(_))
    ));

    c.bench_function(
        &format!(
            "from_slice+validate moodle resource link ({} B)",
            moodle.len()
        ),
        |b| b.iter(|| LtiMessage::from_slice(black_box(&moodle), &opts).unwrap()),
    );
    c.bench_function(
        &format!(
            "from_slice+validate certification launch ({} B)",
            cert.len()
        ),
        |b| b.iter(|| LtiMessage::from_slice(black_box(&cert), &opts).unwrap()),
    );
    let value: Value = serde_json::from_slice(&moodle).unwrap();
    c.bench_function(
        "from_value+validate moodle resource link (Value already parsed)",
        |b| b.iter(|| LtiMessage::from_value(black_box(value.clone()), &opts).unwrap()),
    );
    c.bench_function(
        "clone of the parsed Value alone (baseline for the line above)",
        |b| b.iter(|| black_box(value.clone())),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
