//! Provider privacy (`PersonalData`) and the account-linking hook
//! (`AccountLinker`): a launch's user mapped to a local account, kept with the
//! saved launch, or the launch refused with `account_refused` (403).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use common::Harness;
use http::StatusCode;
use lti_tool::{AccountLinker, AccountRefusal, PersonalData, VerifiedIdToken};
use serde_json::json;

/// The embedding application's accounts: LTI users (issuer, `sub`) linked to
/// local ids; unlinked users are refused.
struct Accounts(HashMap<(String, String), String>);

#[async_trait]
impl AccountLinker for Accounts {
    async fn link(&self, launch: &VerifiedIdToken) -> Result<String, AccountRefusal> {
        let key = (
            launch.issuer().to_owned(),
            launch.sub().unwrap_or_default().to_owned(),
        );
        self.0
            .get(&key)
            .cloned()
            .ok_or_else(|| AccountRefusal::new("no local account is linked to this LMS user"))
    }
}

fn accounts() -> Arc<Accounts> {
    Arc::new(Accounts(HashMap::from([(
        (common::ISS.to_owned(), "user-1".to_owned()),
        "local-42".to_owned(),
    )])))
}

#[tokio::test]
async fn a_linked_user_launches_with_the_local_account_kept_with_the_launch() {
    let h = Harness::with(|b| b.account_linker(accounts())).await;
    let (launch, _) = h.launch_with(|_| {}).await.unwrap();
    assert_eq!(launch.account(), Some("local-42"));
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.account(), Some("local-42"));
    // Without a linker there is no account.
    let plain = Harness::new().await;
    let (launch, _) = plain.launch_with(|_| {}).await.unwrap();
    assert_eq!(launch.account(), None);
}

#[tokio::test]
async fn an_unlinked_user_is_refused_with_account_refused() {
    let h = Harness::with(|b| b.account_linker(accounts())).await;
    let err = h
        .launch_with(|c| {
            c.insert("sub".into(), json!("stranger"));
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "account_refused");
    assert_eq!(err.http_status(), StatusCode::FORBIDDEN);
    assert!(
        err.to_string().contains("no local account is linked"),
        "{err}"
    );
}

#[tokio::test]
async fn dropping_personal_data_removes_names_and_email_from_the_saved_launch() {
    let add_email = |c: &mut serde_json::Map<String, serde_json::Value>| {
        c.insert("email".into(), json!("ada@example.edu"));
        c.insert("given_name".into(), json!("Ada"));
    };
    let h = Harness::with(|b| b.personal_data(PersonalData::Drop)).await;
    let (launch, _) = h.launch_with(add_email).await.unwrap();
    let loaded = h.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.claims().name, None);
    assert_eq!(loaded.claims().email, None);
    assert_eq!(loaded.claims().given_name, None);
    assert!(!loaded.payload_json().contains("ada@example.edu"));
    assert_eq!(loaded.sub(), Some("user-1"));
    // The default keeps them.
    let keep = Harness::new().await;
    let (launch, _) = keep.launch_with(add_email).await.unwrap();
    let loaded = keep.tool.load_launch(launch.launch_id()).await.unwrap();
    assert_eq!(loaded.claims().name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(loaded.claims().email.as_deref(), Some("ada@example.edu"));
}
