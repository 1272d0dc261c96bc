//! The configuration-file backend: native TOML/JSON layout, the Python
//! issuer map, read-only behaviour, reload and import.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(feature = "file", feature = "memory"))]

use std::sync::Arc;

use lti_registry::{
    Deployment, DeploymentStatus, KeySource, QuirkProfile, RegistrationStore, RegistryError,
    SecretCipher, UnknownDeploymentPolicy, system_clock,
};
use lti_store::{FileRegistry, MemoryStore};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/lti-store"
);
const TOML: &str = include_str!("../../../tests/fixtures/lti-store/registrations.toml");
const ISSUER_MAP: &str = include_str!("../../../tests/fixtures/lti-store/issuer-map.json");
const CANVAS: &str = "https://canvas.instructure.com";

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

#[tokio::test]
async fn toml_file_loads_registrations_deployments_and_quirks() {
    let f = FileRegistry::load(fixture("registrations.toml")).unwrap();
    let moodle = f
        .get_registration("https://moodle.example.edu", "moodle-client-1")
        .await
        .unwrap();
    assert_eq!(moodle.quirks, QuirkProfile::Moodle);
    assert_eq!(moodle.deployments.len(), 2);
    assert_eq!(
        moodle.deployment("2").unwrap().status,
        DeploymentStatus::Inactive
    );
    assert_eq!(
        moodle.metadata.get("name").map(String::as_str),
        Some("Example Moodle")
    );
    assert_eq!(
        moodle.unknown_deployment_policy,
        UnknownDeploymentPolicy::Reject
    );

    let bs = f
        .find_by_issuer("https://brightspace.example.com")
        .await
        .unwrap();
    assert_eq!(
        bs.token_audience(),
        "https://api.brightspace.com/auth/token"
    );
    assert_eq!(bs.allowed_algorithms, ["RS256", "RS384"]);
    assert!(matches!(bs.key_source, KeySource::StaticJwks { .. }));

    // Canvas cloud: two client ids share the issuer.
    assert!(matches!(
        f.find_by_issuer(CANVAS).await.unwrap_err(),
        RegistryError::AmbiguousIssuer { count: 2, .. }
    ));
    let canvas = f
        .resolve_registration(CANVAS, Some("10000000000001"))
        .await
        .unwrap();
    assert_eq!(
        canvas.unknown_deployment_policy,
        UnknownDeploymentPolicy::RecordPendingAndReject
    );
    assert!(f.get_auto_registration(CANVAS).await.unwrap().is_some());
    assert_eq!(f.list_registrations().await.unwrap().len(), 4);
}

#[tokio::test]
async fn json_file_in_the_native_layout_loads() {
    let f = FileRegistry::load(fixture("registrations.json")).unwrap();
    let r = f.find_by_issuer("https://sakai.example.org").await.unwrap();
    assert_eq!(r.quirks, QuirkProfile::Sakai);
    assert_eq!(r.deployments, [Deployment::active("1")]);
}

#[tokio::test]
async fn python_issuer_map_is_imported() {
    let f = FileRegistry::from_json_str(ISSUER_MAP, UnknownDeploymentPolicy::Reject).unwrap();
    let regs = f.list_registrations().await.unwrap();
    assert_eq!(regs.len(), 3);
    let bb = f.find_by_issuer("https://blackboard.com").await.unwrap();
    assert_eq!(bb.client_id, "bb-app-id");
    assert_eq!(
        bb.auth_login_url,
        "https://developer.blackboard.com/api/v1/gateway/oidcauth"
    );
    assert_eq!(
        bb.key_source,
        KeySource::JwksUrl {
            url: "https://developer.blackboard.com/api/v1/management/applications/bb-app-id/jwks.json"
                .into()
        }
    );
    assert_eq!(
        bb.metadata.get("tool_kid").map(String::as_str),
        Some("tool-key-2024")
    );
    let c2 = f.get_registration(CANVAS, "10000000000002").await.unwrap();
    assert_eq!(c2.deployments, [Deployment::active("12:abc")]);
    // With the default policy, an unknown deployment is rejected without recording.
    assert!(matches!(
        f.check_deployment(&bb, "d1", 0).await.unwrap_err(),
        RegistryError::UnknownDeployment {
            recorded_as_pending: false,
            ..
        }
    ));
}

#[tokio::test]
async fn file_registry_is_read_only() {
    let f = FileRegistry::from_toml_str(TOML).unwrap();
    let reg = f
        .get_registration("https://moodle.example.edu", "moodle-client-1")
        .await
        .unwrap();
    let ro = |e: RegistryError| {
        matches!(
            e,
            RegistryError::ReadOnly {
                backend: "file",
                ..
            }
        )
    };
    assert!(ro(f.insert_registration(&reg).await.unwrap_err()));
    assert!(ro(f.update_registration(&reg).await.unwrap_err()));
    assert!(ro(f
        .delete_registration(&reg.issuer, &reg.client_id)
        .await
        .unwrap_err()));
    assert!(ro(f
        .upsert_deployment(&reg.issuer, &reg.client_id, &Deployment::active("x"))
        .await
        .unwrap_err()));
    assert!(ro(f.remove_auto_registration(CANVAS).await.unwrap_err()));
    // A recording deployment policy cannot record into a read-only file.
    let canvas = f.get_registration(CANVAS, "10000000000001").await.unwrap();
    assert!(ro(f.check_deployment(&canvas, "new", 0).await.unwrap_err()));
}

#[tokio::test]
async fn reload_picks_up_changes_and_keeps_old_contents_on_error() {
    let path = std::env::temp_dir().join(format!("lti-store-reload-{}.toml", std::process::id()));
    std::fs::write(&path, TOML).unwrap();
    let f = FileRegistry::load(&path).unwrap();
    assert_eq!(f.list_registrations().await.unwrap().len(), 4);

    let fewer: String = TOML
        .split("[[registrations]]")
        .take(2)
        .collect::<Vec<_>>()
        .join("[[registrations]]");
    std::fs::write(&path, fewer).unwrap();
    assert_eq!(f.reload().unwrap(), 1);
    assert_eq!(f.list_registrations().await.unwrap().len(), 1);

    std::fs::write(&path, "[[registrations]]\nissuer = 3\n").unwrap();
    assert!(matches!(
        f.reload().unwrap_err(),
        RegistryError::InvalidInput {
            field: "registration file",
            ..
        }
    ));
    assert_eq!(f.list_registrations().await.unwrap().len(), 1);
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        f.reload().unwrap_err(),
        RegistryError::StoreUnavailable {
            backend: "file",
            ..
        }
    ));
    assert!(matches!(
        FileRegistry::from_toml_str(TOML)
            .unwrap()
            .reload()
            .unwrap_err(),
        RegistryError::InvalidInput { .. }
    ));
}

#[test]
fn invalid_files_are_rejected_with_specific_errors() {
    let bad_ext = FileRegistry::load(fixture("README.md")).unwrap_err();
    assert!(matches!(
        bad_ext,
        RegistryError::InvalidInput {
            field: "registration file",
            ..
        }
    ));

    let dup = format!(
        "{}\n{}",
        TOML,
        TOML.split("[[registrations]]")
            .nth(1)
            .map(|s| format!("[[registrations]]{s}"))
            .unwrap()
    );
    assert!(matches!(
        FileRegistry::from_toml_str(&dup).unwrap_err(),
        RegistryError::InvalidInput {
            field: "registrations",
            ..
        }
    ));
    // A misspelt key is an error, not silently ignored.
    let typo = TOML.replace("token_audience =", "token_audiance =");
    match FileRegistry::from_toml_str(&typo).unwrap_err() {
        RegistryError::InvalidInput { field, found, .. } => {
            assert_eq!(field, "registration file");
            assert!(found.contains("token_audiance"), "{found}");
        }
        other => panic!("expected InvalidInput, found {other:?}"),
    }
    let empty_alg = TOML.replace(
        "allowed_algorithms = [\"RS256\", \"RS384\"]",
        "allowed_algorithms = []",
    );
    assert!(matches!(
        FileRegistry::from_toml_str(&empty_alg).unwrap_err(),
        RegistryError::InvalidInput {
            field: "allowed_algorithms",
            ..
        }
    ));
    assert!(matches!(
        FileRegistry::from_json_str(
            "{\"issuers\": {\"x\": {\"login_url\": \"a\"}}}",
            UnknownDeploymentPolicy::Reject
        )
        .unwrap_err(),
        RegistryError::InvalidInput {
            field: "registration file",
            ..
        }
    ));
    assert!(matches!(
        FileRegistry::from_json_str("not json", UnknownDeploymentPolicy::Reject).unwrap_err(),
        RegistryError::InvalidInput {
            field: "registration file",
            ..
        }
    ));
}

#[tokio::test]
async fn import_into_a_writable_store_enables_recording_policies() {
    let f = FileRegistry::from_toml_str(TOML).unwrap();
    let target = Arc::new(MemoryStore::new(
        SecretCipher::insecure_plaintext_for_tests(),
        system_clock(),
    ));
    let report = f.import_into(target.as_ref()).await.unwrap();
    assert_eq!(
        (report.inserted, report.updated, report.policies),
        (4, 0, 1)
    );
    let again = f.import_into(target.as_ref()).await.unwrap();
    assert_eq!((again.inserted, again.updated), (0, 4));

    let canvas = target
        .get_registration(CANVAS, "10000000000001")
        .await
        .unwrap();
    assert!(matches!(
        target
            .check_deployment(&canvas, "course-copy", 0)
            .await
            .unwrap_err(),
        RegistryError::UnknownDeployment {
            recorded_as_pending: true,
            ..
        }
    ));
    // The imported auto-registration policy works in the writable store.
    let auto = target
        .resolve_registration(CANVAS, Some("10000000000099"))
        .await
        .unwrap();
    assert_eq!(auto.quirks, QuirkProfile::Canvas);
}
