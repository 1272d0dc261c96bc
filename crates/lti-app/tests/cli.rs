//! Tests that run the built `lti` binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use lti_jose::{Algorithm, JwkSet, SigningKey, Verifier};
use serde_json::{Value, json};

/// Kills the spawned server if the test fails before stopping it.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

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

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Spawns `lti serve ARGS` in `cwd` with stdout captured.
fn spawn_serve(args: &[&str], cwd: &std::path::Path) -> KillOnDrop {
    KillOnDrop(Some(
        lti()
            .arg("serve")
            .args(args)
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .env_remove("LTI_CONFIG")
            .env_remove("LTI_BIND")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    ))
}

/// Polls `/healthz` until it answers 200 (up to about a minute).
async fn wait_healthy(url: &str) {
    for _ in 0..600 {
        let req = http::Request::get(format!("{url}/healthz"))
            .body(bytes::Bytes::new())
            .unwrap();
        if let Ok(Ok(resp)) = tokio::time::timeout(
            Duration::from_secs(2),
            lti_http::HttpClient::send(&client(), req),
        )
        .await
            && resp.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the server at {url} never answered /healthz with 200");
}

/// Sends SIGTERM and returns the exit status and everything printed on stdout.
async fn terminate(mut child: KillOnDrop) -> (std::process::ExitStatus, String) {
    let mut child = child.0.take().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        (status, stdout)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn the_built_binary_serves_a_launch_and_shuts_down_on_sigterm() {
    let platform = start_platform().await;
    let url = format!("http://127.0.0.1:{}", free_port());
    let dir = temp_dir("binary");
    // The fixture key: generating one in a debug build takes minutes (the
    // keygen test covers generation).
    let keys = keys_dir_with_fixture_key();
    let file = dir.join("lti.toml");
    let db = format!("sqlite://{}", dir.join("db/lti.db").display());
    std::fs::write(&file, config_text(&url, &platform, &keys, &db)).unwrap();
    let child = spawn_serve(&["--config", file.to_str().unwrap()], &dir);
    wait_healthy(&url).await;
    assert!(
        keys.join("jwks.json").exists(),
        "the public key set was written"
    );
    assert!(
        keys.join("app-secret").exists(),
        "the app secret was created"
    );
    assert!(
        dir.join("db/lti.db").exists(),
        "the SQLite database was created"
    );

    let tool = Tool::external(&url, &keys);
    let inspector = launch_as(&tool, &platform, INSTRUCTOR).await;
    assert_eq!(get(&inspector, None).await.status(), 200);

    let (status, stdout) = terminate(child).await;
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    assert!(
        stdout.contains(&format!("Redirect / launch URL     : {url}/lti/launch")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("Target link URI           : {url}/lti/app")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn without_a_config_serve_uses_the_embedded_default_and_prints_what_to_register() {
    let cwd = temp_dir("embedded");
    // Pre-place the fixture key where the default expects it (data/keys), so
    // the debug build does not spend minutes generating one.
    std::fs::create_dir_all(cwd.join("data/keys")).unwrap();
    std::fs::write(cwd.join("data/keys/private.pem"), TOOL_KEY).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = spawn_serve(&["--bind", &format!("127.0.0.1:{port}")], &cwd);
    wait_healthy(&url).await;
    assert!(cwd.join("data/lti.db").exists(), "SQLite under ./data");
    let jwks = get(&format!("{url}/.well-known/jwks.json"), None).await;
    assert_eq!(jwks.status(), 200);

    let (status, stdout) = terminate(child).await;
    assert!(status.success());
    for line in [
        format!("OIDC login initiation URL : {url}/lti/login"),
        format!("Redirect / launch URL     : {url}/lti/launch"),
        format!("Public keyset (JWKS) URL  : {url}/.well-known/jwks.json"),
        format!("Target link URI           : {url}/lti/app"),
        "using the embedded default".to_owned(),
    ] {
        assert!(stdout.contains(&line), "missing {line:?} in {stdout}");
    }
    std::fs::remove_dir_all(&cwd).unwrap();
}

#[tokio::test]
async fn json_log_format_writes_one_json_object_per_line() {
    let cwd = temp_dir("json-logs");
    std::fs::create_dir_all(cwd.join("data/keys")).unwrap();
    std::fs::write(cwd.join("data/keys/private.pem"), TOOL_KEY).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = KillOnDrop(Some(
        lti()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .current_dir(&cwd)
            .env("RUST_LOG", "info")
            .env("LTI_LOG_FORMAT", "json")
            .env_remove("LTI_CONFIG")
            .env_remove("LTI_BIND")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    wait_healthy(&url).await;
    let probe = get(&format!("{url}/healthz?lti_launch_id=do-not-log-me"), None).await;
    assert_eq!(probe.status(), 200);
    let mut process = child.0.take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &process.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        let status = process.wait().unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(process.stderr.as_mut().unwrap(), &mut stderr).unwrap();
        (status, stderr)
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged nothing");
    for line in &lines {
        let event: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(event["timestamp"].is_string(), "{line}");
        assert!(event["level"].is_string(), "{line}");
        assert!(event["fields"].is_object(), "{line}");
    }
    assert!(
        lines.iter().any(|l| l.contains("\"level\":\"INFO\"")),
        "{stderr}"
    );
    // One request line per HTTP request: method and path (never the query),
    // status and latency.
    let requests: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["target"] == "lti_app::request")
        .collect();
    assert!(!requests.is_empty(), "{stderr}");
    let health = requests
        .iter()
        .find(|e| e["span"]["path"] == "/healthz")
        .unwrap_or_else(|| panic!("no request line for /healthz in {stderr}"));
    assert_eq!(health["span"]["method"], "GET");
    assert_eq!(health["fields"]["status"], 200);
    assert!(health["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(
        !stderr.contains("do-not-log-me"),
        "a query value was logged"
    );
    std::fs::remove_dir_all(&cwd).unwrap();
}

/// Runs `lti consumers ARGS` in `cwd` (the embedded default store under
/// `./data`) and returns (success, stdout, stderr).
fn consumers(cwd: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = lti()
        .arg("consumers")
        .args(args)
        .current_dir(cwd)
        .env_remove("LTI_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn consumers_are_added_listed_exported_reimported_and_removed() {
    use std::os::unix::fs::PermissionsExt as _;
    let cwd = temp_dir("consumers");
    let (ok, out, err) = consumers(&cwd, &["add", "Moodle at school"]);
    assert!(ok, "{err}");
    let field = |label: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .map(|v| v.trim_start_matches([' ', ':']).trim().to_owned())
            .unwrap_or_else(|| panic!("no {label} in {out}"))
    };
    let key = field("Consumer key");
    let secret = field("Shared secret");
    assert_eq!(key.len(), 16, "{out}");
    assert_eq!(secret.len(), 43, "a 256-bit secret: {out}");
    let (ok, out, err) = consumers(
        &cwd,
        &["add", "Sakai", "--key", "sakai-key", "--silo", "district-7"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("Silo            : district-7"), "{out}");
    let (ok, _, err) = consumers(&cwd, &["add", "Again", "--key", "sakai-key"]);
    assert!(!ok, "a taken key is refused");
    assert!(
        err.contains("error [store]") && err.contains("sakai-key"),
        "{err}"
    );

    let (ok, list, _) = consumers(&cwd, &["list"]);
    assert!(ok);
    assert!(list.contains(&format!("{key}\tMoodle at school")), "{list}");
    assert!(
        list.contains("sakai-key\tSakai\tinstance -\tsilo district-7"),
        "{list}"
    );
    assert!(
        list.contains(&format!("{key}\tMoodle at school\tinstance -\tsilo -")),
        "{list}"
    );
    assert!(!list.contains(&secret), "list never prints secrets");

    let plain = cwd.join("plain.txt");
    let (ok, _, err) = consumers(&cwd, &["export", plain.to_str().unwrap()]);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&plain).unwrap();
    assert!(text.contains(&key) && !text.contains(&secret), "{text}");
    let mode = std::fs::metadata(&plain).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let (ok, _, err) = consumers(&cwd, &["export", plain.to_str().unwrap()]);
    assert!(!ok && err.contains("error [output_exists]"), "{err}");
    let (ok, _, err) = consumers(&cwd, &["import", plain.to_str().unwrap()]);
    assert!(!ok && err.contains("error [invalid_import_line]"), "{err}");

    let full = cwd.join("full.txt");
    let (ok, _, err) = consumers(&cwd, &["export", full.to_str().unwrap(), "--with-secrets"]);
    assert!(ok, "{err}");
    assert!(
        std::fs::read_to_string(&full)
            .unwrap()
            .contains(&format!("{key} {secret}"))
    );

    let (ok, _, err) = consumers(&cwd, &["remove", &key]);
    assert!(ok, "{err}");
    let (ok, _, err) = consumers(&cwd, &["remove", &key]);
    assert!(!ok && err.contains("error [store]"), "{err}");
    let (_, list, _) = consumers(&cwd, &["list"]);
    assert!(!list.contains(&key), "{list}");

    let (ok, out, err) = consumers(&cwd, &["import", full.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("Imported 2 consumer(s)"), "{out}");
    let (_, list, _) = consumers(&cwd, &["list"]);
    assert!(list.contains(&key), "the export re-imports: {list}");
    std::fs::remove_dir_all(&cwd).unwrap();
}

/// Runs `lti ARGS --config FILE` and returns (success, stdout, stderr).
fn admin(config: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = lti()
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("LTI_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `code` of a JSON refusal.
fn error_code(resp: &http::Response<bytes::Bytes>) -> String {
    let body: Value = serde_json::from_slice(resp.body()).unwrap_or(Value::Null);
    body["error"].as_str().unwrap_or_default().to_owned()
}

/// A launch as an instructor: the login's answer when it is not a redirect,
/// else the launch's answer.
async fn launch_response(tool: &Tool, platform: &Platform) -> http::Response<bytes::Bytes> {
    let login = get(
        &format!(
            "{}/lti/login?iss={}&login_hint=hint-1&target_link_uri={}/lti/app&client_id={CLIENT_ID}",
            tool.url, platform.base, tool.url
        ),
        Some("application/json"),
    )
    .await;
    if login.status() != 302 {
        return login;
    }
    let location = login.headers()[http::header::LOCATION].to_str().unwrap();
    let cookie = login.headers()[http::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let login = Login {
        location: location.to_owned(),
        set_cookie: cookie.clone(),
        state: param(location, "state").unwrap(),
        nonce: param(location, "nonce").unwrap(),
        cookie,
    };
    let token = lti_jose::sign(
        &claims(tool, platform, &login.nonce, INSTRUCTOR),
        platform_key(),
    )
    .unwrap();
    post_launch(tool, &login, &token, Some("application/json")).await
}

/// A launch as an instructor, answered with the tool's status and error code.
async fn try_launch(tool: &Tool, platform: &Platform) -> (u16, String) {
    let resp = launch_response(tool, platform).await;
    (resp.status().as_u16(), error_code(&resp))
}

/// A successful instructor launch's `Location` (the inspector with its
/// launch id).
async fn try_launch_location(tool: &Tool, platform: &Platform) -> String {
    let resp = launch_response(tool, platform).await;
    assert_eq!(resp.status(), 303, "{}", error_code(&resp));
    resp.headers()[http::header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The kids the running tool publishes.
async fn published_kids(url: &str) -> Vec<String> {
    let resp = get(&format!("{url}/.well-known/jwks.json"), None).await;
    assert_eq!(resp.status(), 200);
    let set: Value = serde_json::from_slice(resp.body()).unwrap();
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn platforms_deployments_and_keys_change_under_a_running_server() {
    let dir = temp_dir("admin");
    let db = format!("sqlite://{}", dir.join("lti.db").display());
    admin_scenario(&dir, &db).await;
}

/// The same scenario on PostgreSQL (`LTI_TEST_POSTGRES_URL`), in a schema of
/// its own that is dropped afterwards.
#[tokio::test]
async fn platforms_deployments_and_keys_change_under_a_running_server_on_postgres() {
    let Ok(pg) = std::env::var("LTI_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var_os("LTI_TEST_REQUIRE_BACKENDS").is_none(),
            "LTI_TEST_REQUIRE_BACKENDS is set but LTI_TEST_POSTGRES_URL is not"
        );
        eprintln!("skipped: LTI_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!(
        "lti_app_cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let pool = sqlx::PgPool::connect(&pg).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&pool)
        .await
        .unwrap();
    // The server and the commands use the schema through the URL's
    // connection options (`search_path`).
    let sep = if pg.contains('?') { '&' } else { '?' };
    let url = format!("{pg}{sep}options%5Bsearch_path%5D={schema}");
    let dir = temp_dir("admin-pg");
    admin_scenario(&dir, &url).await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// `lti platforms …` and `lti keys rotate` against the store at `db` while the
/// built binary serves on it.
async fn admin_scenario(dir: &std::path::Path, db: &str) {
    let platform = start_platform().await;
    let url = format!("http://127.0.0.1:{}", free_port());
    let keys = keys_dir_with_fixture_key();
    let file = dir.join("lti.toml");
    // The same configuration as the other tests, without [[platforms]]: the
    // platform is registered by the command while the server runs.
    let full = config_text(&url, &platform, &keys, db);
    let start = full.find("[[platforms]]").unwrap();
    let end = full.find("[[consumers]]").unwrap();
    std::fs::write(&file, format!("{}{}", &full[..start], &full[end..])).unwrap();
    let child = spawn_serve(&["--config", file.to_str().unwrap()], dir);
    wait_healthy(&url).await;
    let tool = Tool::external(&url, &keys);

    assert_eq!(
        try_launch(&tool, &platform).await,
        (403, "unknown_issuer".to_owned()),
        "nothing is registered yet"
    );
    let p = platform.base.clone();
    let add = [
        "platforms",
        "add",
        "--issuer",
        &p,
        "--client-id",
        CLIENT_ID,
        "--auth-login-url",
        &format!("{p}/auth"),
        "--auth-token-url",
        &format!("{p}/token"),
        "--jwks-url",
        &format!("{p}/jwks"),
        "--deployment-id",
        DEPLOYMENT,
    ]
    .map(String::from);
    let add: Vec<&str> = add.iter().map(String::as_str).collect();
    let (ok, out, err) = admin(&file, &add);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("active: {DEPLOYMENT}")), "{out}");
    assert_eq!(
        try_launch(&tool, &platform).await.0,
        303,
        "launches at once, no restart"
    );
    let (ok, _, err) = admin(&file, &add);
    assert!(
        !ok && err.contains("error [store]"),
        "a second add conflicts: {err}"
    );
    let mut insecure = add.clone();
    let jwks_at = insecure.iter().position(|a| *a == "--jwks-url").unwrap() + 1;
    insecure[jwks_at] = "http://lms.example.edu/jwks";
    let (ok, _, err) = admin(&file, &insecure);
    assert!(
        !ok && err.contains("error [invalid_config]") && err.contains("--jwks-url"),
        "{err}"
    );

    let (ok, list, _) = admin(&file, &["platforms", "list"]);
    assert!(
        ok && list.contains(&format!("{p}\t{CLIENT_ID}\tactive: {DEPLOYMENT}")),
        "{list}"
    );
    let (ok, show, _) = admin(&file, &["platforms", "show", &p]);
    assert!(ok && show.contains(&format!("{p}/jwks")), "{show}");
    assert!(show.contains("Status                 : active"), "{show}");
    let (ok, out, err) = admin(&file, &["platforms", "approve", &p, CLIENT_ID]);
    assert!(
        ok && out.starts_with(&format!("Approved {p}")),
        "{out}{err}"
    );
    let (ok, _, err) = admin(&file, &["platforms", "approve", &p, "no-such-client"]);
    assert!(!ok && err.contains("error [store]"), "{err}");

    let deployments = |action: &'static str, id: &'static str| {
        let p = p.clone();
        let file = file.clone();
        move || {
            admin(
                &file,
                &["platforms", "deployments", &p, CLIENT_ID, action, id],
            )
        }
    };
    let (ok, out, err) = deployments("disable", DEPLOYMENT)();
    assert!(ok, "{err}");
    assert!(out.contains(&format!("inactive: {DEPLOYMENT}")), "{out}");
    assert_eq!(
        try_launch(&tool, &platform).await,
        (403, "deployment_inactive".to_owned())
    );
    let (ok, _, err) = deployments("approve", DEPLOYMENT)();
    assert!(ok, "{err}");
    assert_eq!(try_launch(&tool, &platform).await.0, 303);
    let (ok, _, err) = deployments("approve", "no-such-deployment")();
    assert!(!ok && err.contains("error [store]"), "{err}");
    let (ok, out, err) = deployments("add", "dep-2")();
    assert!(
        ok && out.contains(&format!("active: {DEPLOYMENT}, dep-2")),
        "{out}{err}"
    );
    let (ok, out, _) = deployments("remove", "dep-2")();
    assert!(ok && !out.contains("dep-2"), "{out}");

    // Key rotation while the server runs: the fixture key was installed by
    // `serve` and is active.
    let before = published_kids(&url).await;
    assert_eq!(before.len(), 1);
    let (ok, out, err) = admin(&file, &["keys", "rotate"]);
    assert!(ok, "{err}");
    let next = out
        .split_whitespace()
        .nth(4)
        .unwrap()
        .trim_end_matches(':')
        .to_owned();
    assert!(out.starts_with("Published the next key"), "{out}");
    assert_eq!(
        published_kids(&url).await,
        [before[0].clone(), next.clone()],
        "every instance publishes the next key at once"
    );
    let (ok, _, err) = admin(&file, &["keys", "rotate"]);
    assert!(!ok && err.contains("error [rotation_too_early]"), "{err}");
    let (ok, out, err) = admin(&file, &["keys", "rotate", "--now"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("The key {next} signs from now on.")),
        "{out}"
    );
    let (_, list, _) = admin(&file, &["keys", "list"]);
    assert!(list.contains(&format!("{next}\tactive")), "{list}");
    assert!(list.contains(&format!("{}\tretired", before[0])), "{list}");
    assert_eq!(
        published_kids(&url).await,
        [next.clone(), before[0].clone()],
        "the retired key stays published for the overlap"
    );
    // Service token requests sign with the store's active key at once, not
    // with the key file the server started with.
    let inspector = try_launch_location(&tool, &platform).await;
    let id = param(&inspector, "lti_launch_id").unwrap();
    let ags = get(&format!("{url}/lti/app/ags?lti_launch_id={id}"), None).await;
    assert_eq!(ags.status(), 200);
    assert_eq!(
        platform.assertion_kids.lock().unwrap().last(),
        Some(&next),
        "the AGS token request is signed with the promoted key"
    );

    let (ok, _, err) = admin(&file, &["platforms", "remove", &p, CLIENT_ID]);
    assert!(ok, "{err}");
    assert_eq!(
        try_launch(&tool, &platform).await,
        (403, "unknown_issuer".to_owned())
    );
    drop(child);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_config_prints_the_merged_settings_with_their_origin_and_redacts_secrets() {
    let dir = temp_dir("check-env");
    let file = dir.join("lti.toml");
    std::fs::write(
        &file,
        "[server]\nbind = \"127.0.0.1:3100\"\n[storage]\nurl = \"sqlite://data/x.db\"\n",
    )
    .unwrap();
    let out = lti()
        .arg("check-config")
        .arg(&file)
        .env_remove("LTI_CONFIG")
        .env_remove("LTI_BIND")
        .env_remove("LTI_NONCE_URL")
        .env_remove("LTI_KEYS_DIR")
        .env_remove("LTI_ALLOW_PRIVATE_ADDRESSES")
        .env_remove("LTI_DYNAMIC_REGISTRATION")
        .env_remove("LTI_LOG_FORMAT")
        .env("LTI_PUBLIC_URL", "https://tool.example.edu")
        .env(
            "LTI_STORAGE_URL",
            "postgres://lti:hunter2@db.internal:5432/lti?sslmode=require",
        )
        .env(
            "LTI_APP_SECRET",
            "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |key: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in {stdout}"))
            .to_owned()
    };
    assert!(
        line("server.bind").contains("127.0.0.1:3100") && line("server.bind").ends_with("(file)")
    );
    assert!(line("server.public_url").contains("https://tool.example.edu/"));
    assert!(line("server.public_url").ends_with("(env LTI_PUBLIC_URL)"));
    assert!(line("storage.url").contains("db.internal:5432/lti"));
    assert!(line("storage.url").ends_with("(env LTI_STORAGE_URL)"));
    assert!(line("keys.app_secret").contains("[redacted]"));
    assert!(line("keys.dir").ends_with("(default)"));
    assert!(line("dynamic_registration.enabled").contains("false"));
    assert!(line("log_format").contains("text"));
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("c2VjcmV0"),
        "{stdout}"
    );

    let out = lti()
        .arg("check-config")
        .arg(&file)
        .env_remove("LTI_CONFIG")
        .env("LTI_DYNAMIC_REGISTRATION", "maybe")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "dynamic_registration.enabled: expected true or false in LTI_DYNAMIC_REGISTRATION"
        ),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A mimilti issuer map for the test platform: no deployment ids, as
/// mimilti's never have.
fn issuer_map(platform: &Platform) -> String {
    let p = &platform.base;
    serde_json::to_string_pretty(&json!({
        "kid": "tool-key-1",
        "issuers": {
            p: {
                "login_url": format!("{p}/auth"),
                "token_url": format!("{p}/token"),
                "tools": [{"aud": CLIENT_ID, "jwks_endpoint": format!("{p}/jwks")}]
            }
        }
    }))
    .unwrap()
}

/// A PyLTI1.3 `config.json` for the test platform, in its one-entry form.
fn pylti1p3_config(platform: &Platform) -> String {
    let p = &platform.base;
    serde_json::to_string_pretty(&json!({
        p: {
            "default": true,
            "client_id": CLIENT_ID,
            "auth_login_url": format!("{p}/auth"),
            "auth_token_url": format!("{p}/token"),
            "auth_audience": null,
            "key_set_url": format!("{p}/jwks"),
            "key_set": null,
            "private_key_file": "private.key",
            "public_key_file": "public.key",
            "deployment_ids": [DEPLOYMENT]
        }
    }))
    .unwrap()
}

#[tokio::test]
async fn issuer_maps_and_pylti1p3_config_files_are_imported_and_loaded_at_start() {
    let platform = start_platform().await;
    let url = format!("http://127.0.0.1:{}", free_port());
    let dir = temp_dir("import");
    let keys = keys_dir_with_fixture_key();
    let file = dir.join("lti.toml");
    let db = format!("sqlite://{}", dir.join("lti.db").display());
    let full = config_text(&url, &platform, &keys, &db);
    let start = full.find("[[platforms]]").unwrap();
    let end = full.find("[[consumers]]").unwrap();
    let without_platforms = format!("{}{}", &full[..start], &full[end..]);
    std::fs::write(&file, &without_platforms).unwrap();
    let map = dir.join("issuers.json");
    std::fs::write(&map, issuer_map(&platform)).unwrap();
    let pylti = dir.join("config.json");
    std::fs::write(&pylti, pylti1p3_config(&platform)).unwrap();
    let child = spawn_serve(&["--config", file.to_str().unwrap()], &dir);
    wait_healthy(&url).await;
    let tool = Tool::external(&url, &keys);

    // An unknown member is refused by its key path and nothing is written.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        issuer_map(&platform).replace("\"jwks_endpoint\"", "\"jwks_url\""),
    )
    .unwrap();
    let (ok, _, err) = admin(&file, &["platforms", "import", bad.to_str().unwrap()]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("error [invalid_config]")
            && err.contains(&format!("issuers.{}.tools[0]", platform.base))
            && err.contains("unknown field `jwks_url`"),
        "{err}"
    );
    let (_, list, _) = admin(&file, &["platforms", "list"]);
    assert!(list.contains("No platforms registered"), "{list}");

    // The issuer map: with no deployment ids, the default records each
    // deployment as pending until it is approved.
    let (ok, out, err) = admin(&file, &["platforms", "import", map.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains(": issuer map (mimilti)"), "{out}");
    assert!(out.contains("recorded as pending"), "{out}");
    assert_eq!(
        try_launch(&tool, &platform).await,
        (403, "unknown_deployment".to_owned()),
        "the first launch records the deployment as pending"
    );
    let (ok, _, err) = admin(
        &file,
        &[
            "platforms",
            "deployments",
            &platform.base,
            CLIENT_ID,
            "approve",
            DEPLOYMENT,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        try_launch(&tool, &platform).await.0,
        303,
        "approved: launches"
    );

    // PyLTI1.3's config.json over the same registration: refused without
    // --replace, then replaces it; the key files are reported, not carried.
    let (ok, _, err) = admin(&file, &["platforms", "import", pylti.to_str().unwrap()]);
    assert!(
        !ok && err.contains("conflict") && err.contains("--replace"),
        "{err}"
    );
    let (ok, out, err) = admin(
        &file,
        &["platforms", "import", pylti.to_str().unwrap(), "--replace"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("PyLTI1.3 config.json"), "{out}");
    assert!(
        out.contains(&format!("Replaced {}", platform.base)),
        "{out}"
    );
    assert!(out.contains("private_key_file: not carried over"), "{out}");
    assert_eq!(try_launch(&tool, &platform).await.0, 303);
    let (ok, _, _) = admin(&file, &["platforms", "remove", &platform.base, CLIENT_ID]);
    assert!(ok);
    let _ = terminate(child).await;

    // `[[platform_files]]`: check-config names a broken file by its entry,
    // and `serve` loads a good one at start-up (here mimilti's trust-every-
    // deployment behaviour, asked for by name).
    let broken = format!(
        "{without_platforms}\n[[platform_files]]\npath = {:?}\n",
        bad.display().to_string()
    );
    std::fs::write(&file, broken).unwrap();
    let out = lti().arg("check-config").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("platform_files[0]") && stderr.contains("unknown field `jwks_url`"),
        "{stderr}"
    );
    // The [[consumers]] entry also names its silo here.
    let good = format!(
        "{}\n[[platform_files]]\npath = {:?}\nno_deployments = \"accept\"\n",
        without_platforms.replace(
            "name = \"Legacy LMS\"",
            "name = \"Legacy LMS\"\nsilo = \"district-7\""
        ),
        map.display().to_string()
    );
    std::fs::write(&file, good).unwrap();
    let child = spawn_serve(&["--config", file.to_str().unwrap()], &dir);
    wait_healthy(&url).await;
    assert_eq!(
        try_launch(&tool, &platform).await.0,
        303,
        "loaded at start-up; every deployment accepted"
    );
    let (_, list, _) = admin(&file, &["platforms", "list"]);
    assert!(
        list.contains(&format!("active: {DEPLOYMENT}")),
        "recorded: {list}"
    );
    let (ok, list, err) = admin(&file, &["consumers", "list"]);
    assert!(ok, "{err}");
    assert!(
        list.contains("consumer-1\tLegacy LMS\tinstance -\tsilo district-7"),
        "{list}"
    );
    let _ = terminate(child).await;
    std::fs::remove_dir_all(&dir).unwrap();
}
