//! Conformance checks of the grade outbox (`GradeOutbox`), run against every
//! backend that keeps it.

use std::collections::{BTreeMap, BTreeSet};

use lti_message::Timestamp;
use lti_message::ags::Score;
use lti_registry::{
    GradeError, GradePayload, GradeStatus, GradeStatusCounts, GradeTarget, RegistryError,
};

use super::Harness;

fn bo_target(sourced: &str) -> GradeTarget {
    GradeTarget::basic_outcomes("ck-outbox", "https://lms.example/outcomes", sourced)
}

fn bo(score: f64) -> GradePayload {
    GradePayload::BasicOutcomes { score, text: None }
}

fn ags_target(user: &str) -> GradeTarget {
    GradeTarget::ags(
        "https://lms.example",
        "client-1",
        "https://lms.example/lineitems/7",
        user,
    )
}

fn ags(user: &str, given: f64) -> GradePayload {
    GradePayload::Ags {
        score: Score::completed_fully_graded(
            user,
            given,
            10.0,
            Timestamp::from_unix_seconds(1_800_000_000).unwrap(),
        ),
    }
}

fn err(code: &str, status: Option<u16>, message: &str) -> GradeError {
    GradeError::new(code, status, message)
}

/// Submit, lease, supersede in flight, report (sent, retry, failed), lease
/// expiry and take-over, status and counts.
pub(crate) async fn outbox_lifecycle_versions_and_leases(h: &Harness) {
    let o = h.store.outbox.as_ref();
    let second = h.second.outbox.as_ref();
    assert_eq!(
        o.status_counts().await.unwrap(),
        GradeStatusCounts::default()
    );
    assert!(o.lease_due(10, 60).await.unwrap().is_empty());

    let t = bo_target("src-1");
    let first = o.submit(&t, &bo(0.25)).await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.id, t.grade_id());
    let r = o.get(&first.id).await.unwrap().unwrap();
    assert_eq!(r.status, GradeStatus::Pending);
    assert_eq!((r.version, r.sent_version, r.attempts), (1, 0, 0));
    assert_eq!(r.payload, bo(0.25));
    assert_eq!(r.target, t);

    // A newer version replaces the unsent one.
    let v2 = second.submit(&t, &bo(0.5)).await.unwrap();
    assert_eq!((v2.id.as_str(), v2.version), (first.id.as_str(), 2));
    assert_eq!(o.get(&first.id).await.unwrap().unwrap().payload, bo(0.5));

    let leases = o.lease_due(10, 60).await.unwrap();
    assert_eq!(leases.len(), 1);
    let lease = &leases[0];
    assert_eq!(lease.record.version, 2);
    assert_eq!(lease.record.attempts, 1);
    assert!(
        matches!(lease.record.status, GradeStatus::InFlight { lease_until } if lease_until == h.now() + 60)
    );
    assert!(
        second.lease_due(10, 60).await.unwrap().is_empty(),
        "one lease at a time"
    );
    assert_eq!(
        o.status_counts().await.unwrap(),
        GradeStatusCounts {
            in_flight: 1,
            ..GradeStatusCounts::default()
        }
    );

    // Superseded while in flight: the lease stays, the worker sees v3.
    assert_eq!(o.submit(&t, &bo(0.75)).await.unwrap().version, 3);
    assert!(second.lease_due(10, 60).await.unwrap().is_empty());
    let now_rec = o.current(lease).await.unwrap().unwrap();
    assert_eq!((now_rec.version, now_rec.payload.clone()), (3, bo(0.75)));
    // The worker delivered v2: the record goes back to pending for v3.
    assert!(second.mark_sent(lease, 2).await.unwrap());
    assert!(
        !o.mark_sent(lease, 2).await.unwrap(),
        "a report applies once"
    );
    assert!(o.current(lease).await.unwrap().is_none());
    let r = o.get(&first.id).await.unwrap().unwrap();
    assert_eq!(
        (r.status.clone(), r.version, r.sent_version),
        (GradeStatus::Pending, 3, 2)
    );

    // A transient failure: due again after the delay, error kept.
    let lease = o.lease_due(10, 60).await.unwrap().remove(0);
    assert_eq!(lease.record.version, 3);
    assert!(
        o.schedule_retry(&lease, 3, 30, &err("platform_error", Some(503), "busy"))
            .await
            .unwrap()
    );
    let r = o.get(&first.id).await.unwrap().unwrap();
    assert_eq!(r.status, GradeStatus::Pending);
    assert_eq!(r.next_attempt_at, h.now() + 30);
    assert_eq!(r.last_error, Some(err("platform_error", Some(503), "busy")));
    assert!(o.lease_due(10, 60).await.unwrap().is_empty(), "not due yet");
    h.clock.advance(30);
    let lease = second.lease_due(10, 60).await.unwrap().remove(0);
    assert_eq!(lease.record.attempts, 2);

    // The lease expires (its holder died): another instance takes over, and
    // the first holder's reports no longer apply.
    h.clock.advance(61);
    assert!(o.current(&lease).await.unwrap().is_none(), "expired");
    let taken = o.lease_due(10, 60).await.unwrap().remove(0);
    assert_ne!(taken.token, lease.token);
    assert_eq!(taken.record.attempts, 3);
    assert!(!second.mark_sent(&lease, 3).await.unwrap());
    assert!(
        !second
            .mark_failed(&lease, 3, &err("x", None, "y"))
            .await
            .unwrap()
    );
    assert!(
        !second
            .schedule_retry(&lease, 3, 1, &err("x", None, "y"))
            .await
            .unwrap()
    );
    assert!(o.mark_sent(&taken, 3).await.unwrap());
    let r = o.get(&first.id).await.unwrap().unwrap();
    assert_eq!((r.status.clone(), r.sent_version), (GradeStatus::Sent, 3));
    assert_eq!(r.last_error, None);
    assert!(
        o.lease_due(10, 60).await.unwrap().is_empty(),
        "sent is done"
    );

    // A definitive refusal keeps the code and the LMS's message.
    let u = ags_target("learner-1");
    let s = o.submit(&u, &ags("learner-1", 7.0)).await.unwrap();
    let lease = o.lease_due(10, 60).await.unwrap().remove(0);
    assert_eq!(lease.record.id, s.id);
    let refusal = err("platform_error", Some(400), "Incorrect score received");
    assert!(o.mark_failed(&lease, 1, &refusal).await.unwrap());
    let r = second.get(&s.id).await.unwrap().unwrap();
    assert_eq!(r.status, GradeStatus::Failed);
    assert_eq!(r.last_error, Some(refusal.clone()));
    assert!(
        o.lease_due(10, 60).await.unwrap().is_empty(),
        "failed is done"
    );
    assert_eq!(
        o.status_counts().await.unwrap(),
        GradeStatusCounts {
            sent: 1,
            failed: 1,
            ..GradeStatusCounts::default()
        }
    );
    // A failure of an older version while a newer one waits: the newer one
    // is due at once instead.
    o.submit(&u, &ags("learner-1", 8.0)).await.unwrap();
    let lease = o.lease_due(10, 60).await.unwrap().remove(0);
    assert_eq!(lease.record.version, 2);
    assert_eq!(
        lease.record.last_error, None,
        "a new submit clears the error"
    );
    o.submit(&u, &ags("learner-1", 9.0)).await.unwrap();
    assert!(o.mark_failed(&lease, 2, &refusal).await.unwrap());
    let r = o.get(&s.id).await.unwrap().unwrap();
    assert_eq!((r.status.clone(), r.version), (GradeStatus::Pending, 3));
    let lease = o.lease_due(10, 60).await.unwrap().remove(0);
    assert_eq!(lease.record.payload, ags("learner-1", 9.0));

    // Listing: most recently changed first.
    h.clock.advance(5);
    o.submit(&bo_target("src-2"), &bo(1.0)).await.unwrap();
    let listed = o.list(10).await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0].id, bo_target("src-2").grade_id());
    assert_eq!(o.list(1).await.unwrap().len(), 1);
    assert_eq!(o.get("g-unknown").await.unwrap(), None);

    // Bad input is refused with the field named.
    let bad = o.submit(&bo_target("src-3"), &bo(1.5)).await.unwrap_err();
    assert!(
        matches!(bad, RegistryError::InvalidInput { field: "score", .. }),
        "{bad:?}"
    );
    let bad = o.submit(&bo_target(""), &bo(0.5)).await.unwrap_err();
    assert!(
        matches!(
            bad,
            RegistryError::InvalidInput {
                field: "lis_result_sourcedid",
                ..
            }
        ),
        "{bad:?}"
    );
    let bad = o
        .submit(&ags_target("learner-2"), &ags("learner-3", 1.0))
        .await
        .unwrap_err();
    assert!(
        matches!(
            bad,
            RegistryError::InvalidInput {
                field: "score userId",
                ..
            }
        ),
        "{bad:?}"
    );
    let bad = o.lease_due(0, 60).await.unwrap_err();
    assert!(matches!(
        bad,
        RegistryError::InvalidInput {
            field: "lease batch size",
            ..
        }
    ));
    assert_eq!(o.get("").await.unwrap_err().code(), "invalid_input");
}

/// Two clients (separate pools / connections where the backend has them)
/// race to lease 40 due grades with eight tasks each: every grade is leased
/// exactly once. 24 racing submits to one target get 24 distinct versions.
pub(crate) async fn outbox_racing_leasers_take_each_grade_once(h: &Harness) {
    let mut ids = BTreeSet::new();
    for i in 0..40 {
        let s = h
            .store
            .outbox
            .submit(&bo_target(&format!("race-{i}")), &bo(0.5))
            .await
            .unwrap();
        ids.insert(s.id);
    }
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            h.second.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = store.outbox.lease_due(3, 300).await.unwrap();
                if got.is_empty() {
                    // Another racer may still hold rows it has not reported;
                    // none of them comes back before the lease expires.
                    break;
                }
                for lease in got {
                    mine.push(lease.record.id.clone());
                    assert!(
                        store
                            .outbox
                            .mark_sent(&lease, lease.record.version)
                            .await
                            .unwrap()
                    );
                }
            }
            mine
        }));
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for t in tasks {
        for id in t.await.unwrap() {
            *seen.entry(id).or_default() += 1;
        }
    }
    let leased: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(leased, ids, "every grade leased");
    assert!(
        seen.values().all(|n| *n == 1),
        "each grade leased once: {seen:?}"
    );
    assert_eq!(h.store.outbox.status_counts().await.unwrap().sent, 40);

    let t = bo_target("race-versions");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = if i % 2 == 0 {
            h.store.clone()
        } else {
            h.second.clone()
        };
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            store.outbox.submit(&t, &bo(0.5)).await.unwrap().version
        }));
    }
    let mut versions = BTreeSet::new();
    for task in tasks {
        versions.insert(task.await.unwrap());
    }
    assert_eq!(versions, (1..=24).collect::<BTreeSet<u64>>());
    let r = h.store.outbox.get(&t.grade_id()).await.unwrap().unwrap();
    assert_eq!(r.version, 24);
}
