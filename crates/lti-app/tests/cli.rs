//! Tests that run the built `lti` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use lti_jose::{Algorithm, JwkSet, SigningKey, Verifier};
use serde_json::{Value, json};

fn lti() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lti"))
}

#[test]
fn keygen_writes_a_private_key_with_mode_0600_that_round_trips_with_its_jwks() {
    let dir = temp_dir("keygen");
    let out = lti().args(["keygen", "--out"]).arg(&dir).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let private = dir.join("private.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&private).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
    let key = SigningKey::from_pem(&pem, Algorithm::RS256).unwrap();
    let set = JwkSet::from_slice(&std::fs::read(dir.join("jwks.json")).unwrap()).unwrap();
    assert_eq!(set.keys.len(), 1);
    let jwk = &set.keys[0];
    assert_eq!(jwk.kid(), Some(key.kid()));
    assert_eq!(
        jwk.thumbprint().unwrap(),
        key.kid(),
        "kid is the RFC 7638 thumbprint"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(key.kid()));

    // A token signed with the private key verifies with the published JWKS.
    let token = lti_jose::sign(&json!({"sub": "round-trip"}), &key).unwrap();
    let verifying = set.find(Some(key.kid()), Algorithm::RS256).unwrap();
    let claims: Value = Verifier::new(&[Algorithm::RS256])
        .unwrap()
        .verify_token(&token, &verifying)
        .unwrap();
    assert_eq!(claims["sub"], "round-trip");

    // A second run refuses to overwrite; --force replaces the key.
    let again = lti().args(["keygen", "--out"]).arg(&dir).output().unwrap();
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("key_exists") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&private).unwrap(), pem, "untouched");
    let forced = lti()
        .args(["keygen", "--force", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(forced.status.success());
    assert_ne!(std::fs::read_to_string(&private).unwrap(), pem);

    let bad = lti()
        .args(["keygen", "--bits", "1024", "--out"])
        .arg(dir.join("x"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_key_size"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn check_config_reports_every_unknown_key_and_non_https_url_and_fails() {
    let dir = temp_dir("check");
    let file = dir.join("lti.toml");
    std::fs::write(
        &file,
        r#"
[server]
bind = "127.0.0.1:3000"
port = 3000

[[platforms]]
issuer = "https://lms.example.edu"
client_id = "abc"
auth_login_url = "https://lms.example.edu/auth"
auth_token_url = "https://lms.example.edu/token"
jwks_url = "https://lms.example.edu/jwks"
deployment_ids = ["1"]
secret = "x"
"#,
    )
    .unwrap();
    let out = lti().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("server.port: unknown key `port`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("platforms[0].secret: unknown key `secret`"),
        "{stderr}"
    );

    std::fs::write(
        &file,
        r#"
[[platforms]]
issuer = "https://lms.example.edu"
client_id = "abc"
auth_login_url = "http://lms.example.edu/auth"
auth_token_url = "https://lms.example.edu/token"
jwks_url = "http://lms.example.edu/jwks"
deployment_ids = ["1"]
"#,
    )
    .unwrap();
    let out = lti().arg("check-config").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("2 problem(s)"), "{stderr}");
    assert!(stderr.contains("platforms[0].auth_login_url: expected an https URL"));
    assert!(stderr.contains("platforms[0].jwks_url: expected an https URL"));

    std::fs::write(&file, "[storage]\nurl = \"memory://\"\n").unwrap();
    let out = lti().arg("check-config").arg(&file).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_built_binary_serves_a_launch_and_shuts_down_on_sigterm() {
    let platform = start_platform().await;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let dir = temp_dir("binary");
    let keys = dir.join("keys");
    let file = dir.join("lti.toml");
    std::fs::write(
        &file,
        config_text(
            &url,
            &platform,
            &keys,
            &format!("sqlite://{}", dir.join("db/lti.db").display()),
        ),
    )
    .unwrap();
    let mut child = lti()
        .args(["serve", "--config"])
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(resp) = tokio::time::timeout(Duration::from_secs(2), async {
            lti_http::HttpClient::send(
                &client(),
                http::Request::get(format!("{url}/healthz"))
                    .body(bytes::Bytes::new())
                    .unwrap(),
            )
            .await
        })
        .await
            && let Ok(resp) = resp
            && resp.status() == 200
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server answered /healthz");
    assert!(
        keys.join("private.pem").exists(),
        "a key was generated on first start"
    );
    assert!(
        dir.join("db/lti.db").exists(),
        "the SQLite database was created"
    );

    let tool = Tool::external(&url, &keys);
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    assert_eq!(get(&inspector, None).await.status(), 200);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        (status, stdout)
    })
    .await
    .unwrap();
    assert!(exit.0.success(), "graceful shutdown exits 0: {:?}", exit.0);
    assert!(
        exit.1
            .contains(&format!("Redirect / launch URL     : {url}/lti/launch")),
        "{}",
        exit.1
    );
    assert!(
        exit.1
            .contains(&format!("Target link URI           : {url}/lti/app"))
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
