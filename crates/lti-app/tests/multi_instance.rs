//! Several `lti serve` processes (the built binary) sharing one PostgreSQL
//! cluster and one Redis, behind HAProxy configured from
//! `deploy/haproxy.cfg` (the template `docs/deployment.md` documents), with
//! an in-test LMS built on `lti-platform` signing the launches.
//!
//! The test starts its own PostgreSQL cluster (`initdb` in a temporary
//! directory, `pg_ctl` on a free port), its own Redis and its own HAProxy,
//! all on loopback, so it may crash and restart them; the machine's shared
//! servers are never touched. It runs when `LTI_MULTI_INSTANCE_TEST=1` (set
//! by `.ci/run`, which also installs HAProxy); otherwise it says why it skips.
//!
//! Cases: a login on one instance and its launch on another for every message
//! type the tool accepts; a replayed launch through another instance refused
//! with its code; two copies of one launch racing on two instances (exactly
//! one accepted); load while one instance is killed, while Redis is crashed
//! and restarted and while PostgreSQL is crashed and restarted (requests
//! during an outage fail closed with 503 and a code, never a 500; service
//! resumes by itself); every accepted launch replayed at the end (none
//! accepted twice). It prints the counts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lti_jose::{Algorithm, JwkSet, SigningKey};
use lti_platform::{
    AuthRequest, DeepLinkingOptions, LaunchSpec, MemoryToolRegistry, Platform, PlatformConfig,
    PlatformKeys, PlatformSecret, PlatformUser, ToolKeys, ToolRegistration,
};

const CLIENT_ID: &str = "tool-1";
const DEPLOYMENT: &str = "dep-1";
const CONTEXT: &str = "course-1";
const INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const SCOPE_LINEITEM: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem";
const SCOPE_SCORE: &str = "https://purl.imsglobal.org/spec/lti-ags/scope/score";
/// Throw-away test keys (see tests/fixtures/lti-app/README.md).
const PLATFORM_KEY: &str = include_str!("../../../tests/fixtures/lti-app/platform-key.pem");
const TOOL_KEY: &str = include_str!("../../../tests/fixtures/lti-app/tool-key.pem");
/// The load balancer's configuration template, shared with the docs.
const HAPROXY_TEMPLATE: &str = include_str!("../../../deploy/haproxy.cfg");
/// How long a process may take to come up (debug build, busy machine).
const STARTUP: Duration = Duration::from_secs(240);
/// Concurrent simulated users during the load phases.
const WORKERS: usize = 6;
/// Codes an outage of a shared store may be answered with: the instance's
/// own, or HAProxy's once every instance reports itself unhealthy.
const OUTAGE_CODES: [&str; 2] = ["store_unavailable", "no_backend_available"];

fn enabled() -> bool {
    if std::env::var("LTI_MULTI_INSTANCE_TEST").as_deref() == Ok("1") {
        return true;
    }
    eprintln!(
        "skipped: set LTI_MULTI_INSTANCE_TEST=1 to run the multi-instance test (needs haproxy, redis-server and PostgreSQL's initdb and pg_ctl)"
    );
    false
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// A child process killed (SIGKILL) when dropped.
struct Proc(Option<Child>);

impl Proc {
    fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn require_tool(name: &str) -> PathBuf {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && !path.is_empty(),
        "{name} is not installed: expected it on PATH (.ci/run installs it)"
    );
    PathBuf::from(path)
}

/// PostgreSQL's server binaries: the newest /usr/lib/postgresql/*/bin, else PATH.
fn pg_bin() -> PathBuf {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, p)| p.join("pg_ctl").exists())
        .collect();
    dirs.sort();
    match dirs.pop() {
        Some((_, dir)) => dir,
        None => require_tool("pg_ctl").parent().unwrap().to_owned(),
    }
}

/// Our own PostgreSQL cluster (run as `postgres` when the test runs as root).
struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn create(dir: &Path) -> Self {
        let dir = dir.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = is_root();
        if as_postgres {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(ok.success(), "chown of the PostgreSQL directory failed");
        }
        let pg = Self {
            bin: pg_bin(),
            data: dir.join("data"),
            dir,
            port: free_port(),
            as_postgres,
        };
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args(["-U", "root", "--auth=trust", "--no-instructions"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.start();
        pg
    }

    fn start(&self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.join("pg.log"))
            .args(["-w", "-t", "120", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start failed: {} (see {}/pg.log)",
            String::from_utf8_lossy(&out.stderr),
            self.dir.display()
        );
    }

    /// A crash: every server process is killed without a checkpoint
    /// (`pg_ctl stop -m immediate`); the next start recovers from the WAL.
    fn crash(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }

    fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.crash();
    }
}

/// Our own Redis, with the append-only file synced on every write (the
/// documented setting for the nonce store: a restart must not forget which
/// states were used).
struct Redis {
    dir: PathBuf,
    port: u16,
    proc: Proc,
}

impl Redis {
    fn create(dir: &Path) -> Self {
        let dir = dir.join("redis");
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = Self {
            dir,
            port: free_port(),
            proc: Proc(None),
        };
        redis.start();
        redis
    }

    fn start(&mut self) {
        let child = Command::new(require_tool("redis-server"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.proc = Proc(Some(child));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ping() {
            assert!(Instant::now() < deadline, "redis did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// A crash: SIGKILL, nothing flushed beyond what was already synced.
    fn crash(&mut self) {
        self.proc.kill();
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// One `lti serve` process.
struct Instance {
    port: u16,
    config: PathBuf,
    log: PathBuf,
    proc: Proc,
}

impl Instance {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_lti"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.proc = Proc(Some(child));
    }
}

/// Fills in `deploy/haproxy.cfg`.
fn haproxy_config(bind: &str, servers: &[String]) -> String {
    let lines: String = servers
        .iter()
        .enumerate()
        .fold(String::new(), |mut out, (i, addr)| {
            let _ = writeln!(out, "    server lti{} {addr}", i + 1);
            out
        });
    HAPROXY_TEMPLATE
        .replace("{{BIND}}", bind)
        .replace("{{SERVERS}}\n", &lines)
}

// ---------------------------------------------------------------------------
// The LMS
// ---------------------------------------------------------------------------

#[derive(Clone)]
struct Lms {
    platform: Arc<Platform>,
    base: String,
    /// Token requests the token endpoint answered.
    token_requests: Arc<AtomicUsize>,
    /// AGS score posts the services endpoint received.
    score_posts: Arc<AtomicUsize>,
}

async fn start_lms(tool_url: &str) -> Lms {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let keys = Arc::new(PlatformKeys::new(
        SigningKey::from_pem(PLATFORM_KEY, Algorithm::RS256)
            .unwrap()
            .with_kid("platform-1"),
    ));
    let tool_key = SigningKey::from_pem(TOOL_KEY, Algorithm::RS256).unwrap();
    let registry = Arc::new(MemoryToolRegistry::new());
    registry
        .register(
            ToolRegistration::new(
                CLIENT_ID,
                format!("{tool_url}/lti/login"),
                format!("{tool_url}/lti/app"),
                ToolKeys::Static(JwkSet {
                    keys: vec![tool_key.public_jwk()],
                }),
            )
            .with_redirect_uris([format!("{tool_url}/lti/launch")])
            .with_deployment(DEPLOYMENT)
            .with_scope(SCOPE_LINEITEM)
            .with_scope(SCOPE_SCORE),
        )
        .unwrap();
    let platform = Arc::new(
        Platform::new(
            PlatformConfig::new(base.clone()),
            keys,
            PlatformSecret::generate().unwrap(),
            registry,
            Arc::new(JwkSet::default()),
        )
        .unwrap(),
    );
    let token_requests = Arc::new(AtomicUsize::new(0));
    let score_posts = Arc::new(AtomicUsize::new(0));
    let scores = score_posts.clone();
    let (p1, p2, p3, count) = (
        platform.clone(),
        platform.clone(),
        platform.clone(),
        token_requests.clone(),
    );
    let router = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let p = p1.clone();
                async move { p.jwks_response().map(axum::body::Body::from) }
            }),
        )
        .route(
            "/token",
            axum::routing::post(move |req: Request<axum::body::Body>| {
                let (p, count) = (p2.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    let req = to_bytes_request(req).await;
                    p.token_endpoint(&req).await.map(axum::body::Body::from)
                }
            }),
        )
        .route(
            "/lti/{*rest}",
            axum::routing::any(move |req: Request<axum::body::Body>| {
                let (p, scores) = (p3.clone(), scores.clone());
                async move {
                    if req.method() == Method::POST && req.uri().path().ends_with("/scores") {
                        scores.fetch_add(1, Ordering::SeqCst);
                    }
                    let req = to_bytes_request(req).await;
                    p.services_endpoint(&req).await.map(axum::body::Body::from)
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Lms {
        platform,
        base,
        token_requests,
        score_posts,
    }
}

async fn to_bytes_request(req: Request<axum::body::Body>) -> Request<Bytes> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    Request::from_parts(parts, bytes)
}

/// The message types the tool accepts, one launch spec each.
fn specs(user: &str) -> Vec<(&'static str, LaunchSpec)> {
    vec![
        (
            "LtiResourceLinkRequest",
            LaunchSpec::resource_link(CLIENT_ID, DEPLOYMENT, user, "link-1")
                .with_roles([INSTRUCTOR])
                .with_context(CONTEXT, Some("C1"), Some("Course One")),
        ),
        (
            "LtiDeepLinkingRequest",
            LaunchSpec::deep_linking(CLIENT_ID, DEPLOYMENT, user, DeepLinkingOptions::default())
                .with_roles([INSTRUCTOR])
                .with_context(CONTEXT, Some("C1"), Some("Course One")),
        ),
        (
            "LtiSubmissionReviewRequest",
            LaunchSpec::submission_review(CLIENT_ID, DEPLOYMENT, user, "link-1", "learner-1")
                .with_roles([INSTRUCTOR])
                .with_context(CONTEXT, Some("C1"), Some("Course One"))
                .with_line_item("li-1"),
        ),
    ]
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(5))
        .build_http()
}

struct Answer {
    status: StatusCode,
    location: Option<String>,
    cookie: Option<String>,
    body: String,
}

impl Answer {
    /// The error code: the JSON body's `error`, or `lb_<status>` for an
    /// answer of the load balancer without one (502 and 504).
    fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("lb_{}", self.status.as_u16()))
    }
}

async fn send(
    client: &HttpClient,
    method: Method,
    url: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Result<Answer, String> {
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header(ACCEPT, "application/json");
    if let Some(c) = cookie {
        req = req.header(COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            Bytes::from(f)
        }
        None => Bytes::new(),
    };
    let fut = client.request(req.body(Full::new(body)).unwrap());
    let resp = tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .map_err(|_| format!("{url}: no answer in 60 s"))?
        .map_err(|e| format!("{url}: {e}"))?;
    let status = resp.status();
    let header = |name| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let location = header(LOCATION);
    let cookie = header(SET_COOKIE).map(|c| c.split(';').next().unwrap_or("").to_owned());
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("{url}: body: {e}"))?
        .to_bytes();
    Ok(Answer {
        status,
        location,
        cookie,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn pct(s: &str) -> String {
    s.bytes().fold(String::new(), |mut out, b| {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        out
    })
}

fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Moves `url` from origin `from` to origin `to`.
fn rebase(url: &str, from: &str, to: &str) -> String {
    format!(
        "{to}{}",
        url.strip_prefix(from)
            .unwrap_or_else(|| panic!("{url} is not on {from}"))
    )
}

/// A login answered by the tool and the platform's answer to it: what the
/// browser posts to the launch URL.
#[derive(Clone)]
struct Signed {
    state: String,
    id_token: String,
    cookie: String,
}

/// The outcome of one step: `Err((status, code))` for a refusal; status 0
/// with the code `connection_error` when no answer came (the connection was
/// closed under the request).
type Step<T> = Result<T, (u16, String)>;

fn connection_error(detail: &str) -> (u16, String) {
    eprintln!("no answer: {detail}");
    (0, "connection_error".to_owned())
}

fn refused(a: &Answer) -> (u16, String) {
    (a.status.as_u16(), a.code())
}

/// Starts `spec` at the LMS, sends the login initiation to `login_base` (an
/// instance or the load balancer) and has the LMS answer the tool's
/// authorization request.
async fn login(
    client: &HttpClient,
    lms: &Lms,
    public: &str,
    login_base: &str,
    spec: &LaunchSpec,
) -> Step<Signed> {
    let init = lms.platform.start_launch(spec).await.unwrap();
    let url = rebase(&init.redirect_url(), public, login_base);
    let a = send(client, Method::GET, &url, None, None)
        .await
        .map_err(|e| connection_error(&e))?;
    if a.status != StatusCode::FOUND {
        return Err(refused(&a));
    }
    let location = a.location.clone().expect("a Location");
    assert!(location.starts_with(&lms.base), "{location}");
    let auth = AuthRequest::from_http(&Request::get(location).body(Bytes::new()).unwrap()).unwrap();
    let user = PlatformUser::new(&spec.user_id).with_name("Ada", "Lovelace");
    let answer = lms
        .platform
        .authorize(&auth, Some(&user))
        .await
        .map_err(|e| e.error)
        .unwrap();
    assert_eq!(answer.redirect_uri, format!("{public}/lti/launch"));
    Ok(Signed {
        state: answer.state.expect("the state echoed"),
        id_token: answer.id_token,
        cookie: a.cookie.expect("the state cookie"),
    })
}

/// Posts `signed` to `base`'s launch URL; on success the inspector URL (on
/// `base`) and the launch cookie.
async fn launch(client: &HttpClient, base: &str, signed: &Signed) -> Step<(String, String)> {
    let body = form(&[("state", &signed.state), ("id_token", &signed.id_token)]);
    let a = send(
        client,
        Method::POST,
        &format!("{base}/lti/launch"),
        Some(&signed.cookie),
        Some(body),
    )
    .await
    .map_err(|e| connection_error(&e))?;
    if a.status != StatusCode::SEE_OTHER {
        return Err(refused(&a));
    }
    Ok((
        a.location.expect("a Location"),
        a.cookie.expect("the launch cookie"),
    ))
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

struct Cluster {
    dir: PathBuf,
    pg: Postgres,
    redis: Redis,
    instances: Vec<Instance>,
    haproxy: Proc,
    /// The load balancer's URL: every instance's public URL.
    public: String,
    lms: Lms,
    client: HttpClient,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in &mut self.instances {
            i.proc.kill();
        }
        self.haproxy.kill();
        self.redis.crash();
        self.pg.crash();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}

async fn wait_healthy(client: &HttpClient, url: &str, what: &str) {
    let deadline = Instant::now() + STARTUP;
    loop {
        if let Ok(a) = send(client, Method::GET, &format!("{url}/healthz"), None, None).await
            && a.status == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not become healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn start_cluster(name: &str, count: usize) -> Cluster {
    let haproxy = require_tool("haproxy");
    let dir = std::env::temp_dir().join(format!("lti-multi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let pg = Postgres::create(&dir);
    let redis = Redis::create(&dir);
    let lb_port = free_port();
    let public = format!("http://127.0.0.1:{lb_port}");
    let lms = start_lms(&public).await;

    // The same signing key and the same app secret for every instance, each
    // in its own key directory (as on separate hosts).
    let first_keys = dir.join("keys-1");
    std::fs::create_dir_all(&first_keys).unwrap();
    lti_app::app_key(&first_keys).unwrap();
    let secret = std::fs::read(first_keys.join(lti_app::APP_SECRET_FILE)).unwrap();
    let mut instances = Vec::new();
    for n in 1..=count {
        let keys = dir.join(format!("keys-{n}"));
        std::fs::create_dir_all(&keys).unwrap();
        std::fs::write(keys.join(lti_app::PRIVATE_KEY_FILE), TOOL_KEY).unwrap();
        std::fs::write(keys.join(lti_app::APP_SECRET_FILE), &secret).unwrap();
        let port = free_port();
        let config = dir.join(format!("lti-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                r#"[server]
bind = "127.0.0.1:{port}"
public_url = "{public}"

[storage]
url = "{pg}"
nonce_url = "{redis}"

[keys]
dir = "{keys}"

[[platforms]]
issuer = "{lms}"
client_id = "{CLIENT_ID}"
auth_login_url = "{lms}/auth"
auth_token_url = "{lms}/token"
jwks_url = "{lms}/jwks"
deployment_ids = ["{DEPLOYMENT}"]

# The test's LMS is on loopback.
[egress]
allow_private_addresses = true
"#,
                pg = pg.url(),
                redis = redis.url(),
                keys = keys.display(),
                lms = lms.base,
            ),
        )
        .unwrap();
        instances.push(Instance {
            port,
            config,
            log: dir.join(format!("lti-{n}.log")),
            proc: Proc(None),
        });
    }
    let client = http_client();
    // One after the other: the first migrates the schema and installs the key.
    for (n, i) in instances.iter_mut().enumerate() {
        i.start();
        wait_healthy(&client, &i.url(), &format!("instance {}", n + 1)).await;
    }
    let servers: Vec<String> = instances
        .iter()
        .map(|i| format!("127.0.0.1:{}", i.port))
        .collect();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        haproxy_config(&format!("127.0.0.1:{lb_port}"), &servers),
    )
    .unwrap();
    let child = Command::new(haproxy)
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log")).unwrap())
        .spawn()
        .unwrap();
    let haproxy = Proc(Some(child));
    wait_healthy(&client, &public, "haproxy").await;
    Cluster {
        dir,
        pg,
        redis,
        instances,
        haproxy,
        public,
        lms,
        client,
    }
}

// ---------------------------------------------------------------------------
// Load
// ---------------------------------------------------------------------------

/// One launch attempted under load.
struct Attempt {
    /// When it started, from the start of the phase.
    at: Duration,
    /// `Ok` with what a replay needs, or the refusal.
    outcome: Step<Signed>,
}

/// Launch cycles (login then launch, both through the load balancer) by
/// WORKERS users until `stop` is set.
async fn load(cluster: &Cluster, stop: Arc<AtomicBool>, t0: Instant) -> Vec<Attempt> {
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let (client, public) = (cluster.client.clone(), cluster.public.clone());
        let (stop, attempts) = (stop.clone(), attempts.clone());
        let lms = cluster.lms.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let at = t0.elapsed();
                let (_, spec) = specs(&format!("user-{w}-{n}")).swap_remove(0);
                let outcome = match login(&client, &lms, &public, &public, &spec).await {
                    Ok(signed) => launch(&client, &public, &signed).await.map(|_| signed),
                    Err(e) => Err(e),
                };
                if outcome.is_err() {
                    // Do not spin while a store is down.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                attempts.lock().unwrap().push(Attempt { at, outcome });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    Arc::try_unwrap(attempts)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap()
}

/// Polls each instance's `/healthz` every 50 ms; how long each took to
/// answer 200 (at most 60 s).
async fn watch_health(client: HttpClient, urls: Vec<String>) -> Vec<Duration> {
    let t0 = Instant::now();
    let mut out = Vec::new();
    for url in urls {
        loop {
            let ok = send(&client, Method::GET, &format!("{url}/healthz"), None, None)
                .await
                .is_ok_and(|a| a.status == StatusCode::OK);
            if ok || t0.elapsed() > Duration::from_secs(60) {
                out.push(t0.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    out
}

/// The counts of every phase.
#[derive(Default)]
struct Counts {
    attempted: usize,
    succeeded: usize,
    refused: BTreeMap<String, usize>,
    replays_refused: usize,
    accepted_twice: usize,
}

impl Counts {
    fn add(&mut self, attempts: &[Attempt]) {
        for a in attempts {
            self.attempted += 1;
            match &a.outcome {
                Ok(_) => self.succeeded += 1,
                Err((status, code)) => {
                    *self.refused.entry(format!("{status} {code}")).or_default() += 1;
                }
            }
        }
    }
}

/// Runs the load; `fault` runs at 1.5 s into it and returns when the fault is
/// over (the store restarted); the load goes on until `recovery` after that.
/// Returns the attempts and when the fault began and ended.
async fn load_with_fault<F, Fut>(
    cluster: &Cluster,
    fault: F,
    recovery: Duration,
) -> (Vec<Attempt>, Duration, Duration)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let stop = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let load = load(cluster, stop.clone(), t0);
    let driver = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let began = t0.elapsed();
        fault().await;
        let ended = t0.elapsed();
        tokio::time::sleep(recovery).await;
        stop.store(true, Ordering::SeqCst);
        (began, ended)
    };
    let (attempts, (began, ended)) = tokio::join!(load, driver);
    (attempts, began, ended)
}

fn describe(attempts: &[Attempt]) -> String {
    let mut c = Counts::default();
    c.add(attempts);
    format!(
        "{} attempted, {} succeeded, refused {:?}",
        c.attempted, c.succeeded, c.refused
    )
}

/// Checks a store outage: no 500 ever; refusals only 503 with an outage
/// code; service back within `resume` after the restart, and then every
/// launch started a moment later succeeds. Returns the recovery time.
fn check_outage(
    what: &str,
    attempts: &[Attempt],
    began: Duration,
    ended: Duration,
    resume: Duration,
) -> Duration {
    let summary = describe(attempts);
    for a in attempts {
        if let Err((status, code)) = &a.outcome {
            assert!(
                *status == 503 && OUTAGE_CODES.contains(&code.as_str()),
                "{what}: a launch at {:?} was refused with {status} {code}, expected 503 with one of {OUTAGE_CODES:?} ({summary})",
                a.at
            );
            assert!(
                a.at + Duration::from_secs(3) >= began,
                "{what}: a launch at {:?}, before the outage at {began:?}, was refused ({summary})",
                a.at
            );
        }
    }
    assert!(
        attempts.iter().any(|a| a.outcome.is_err()),
        "{what}: no launch failed during the outage, so the fault did not happen ({summary})"
    );
    let first_ok = attempts
        .iter()
        .filter(|a| a.at >= ended && a.outcome.is_ok())
        .map(|a| a.at)
        .min()
        .unwrap_or_else(|| panic!("{what}: no launch succeeded after the restart ({summary})"));
    let recovered = first_ok.saturating_sub(ended);
    assert!(
        recovered <= resume,
        "{what}: service resumed {recovered:?} after the restart, expected within {resume:?}"
    );
    let settled = first_ok + Duration::from_secs(3);
    let late: Vec<_> = attempts
        .iter()
        .filter(|a| a.at >= settled && a.outcome.is_err())
        .map(|a| (a.at, a.outcome.as_ref().err().cloned()))
        .collect();
    assert!(
        late.is_empty(),
        "{what}: launches failed after service resumed at {first_ok:?}: {late:?}"
    );
    assert!(
        attempts
            .iter()
            .any(|a| a.at >= settled && a.outcome.is_ok()),
        "{what}: no launch after {settled:?} ({summary})"
    );
    recovered
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_behind_haproxy_share_state_and_survive_faults() {
    if !enabled() {
        return;
    }
    let mut cluster = start_cluster("faults", 3).await;
    let public = cluster.public.clone();
    let urls: Vec<String> = cluster.instances.iter().map(Instance::url).collect();
    let client = cluster.client.clone();
    let mut counts = Counts::default();
    // Every launch accepted so far, by state: a second acceptance is a replay.
    let mut accepted: Vec<Signed> = Vec::new();

    // 1. Login on one instance, launch on another, the inspector on a third,
    //    for every message type and every ordered pair of instances.
    for (kind, spec) in specs("user-cross") {
        for (i, login_url) in urls.iter().enumerate() {
            for (j, launch_url) in urls.iter().enumerate().filter(|(j, _)| *j != i) {
                counts.attempted += 1;
                let signed = login(&client, &cluster.lms, &public, login_url, &spec)
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: login on {}: {e:?}", i + 1));
                let (inspector, cookie) = launch(&client, launch_url, &signed)
                    .await
                    .unwrap_or_else(|e| {
                        panic!("{kind}: login on {}, launch on {}: {e:?}", i + 1, j + 1)
                    });
                counts.succeeded += 1;
                accepted.push(signed);
                let third = &urls[3 - i - j];
                let page = send(
                    &client,
                    Method::GET,
                    &rebase(&inspector, &public, third),
                    Some(&cookie),
                    None,
                )
                .await
                .unwrap();
                assert_eq!(page.status, 200, "{kind}: inspector: {}", page.body);
                assert!(
                    page.body
                        .contains(&format!("<code id=\"message-type\">{kind}</code>")),
                    "{kind}: {}",
                    page.body
                );
            }
        }
    }

    // 2. A replayed launch (same id_token, state and cookie) through each
    //    other instance, and through the load balancer: refused.
    let (_, spec) = specs("user-replay").swap_remove(0);
    let signed = login(&client, &cluster.lms, &public, &urls[0], &spec)
        .await
        .unwrap();
    launch(&client, &urls[1], &signed).await.unwrap();
    counts.attempted += 1;
    counts.succeeded += 1;
    accepted.push(signed.clone());
    for target in [&urls[0], &urls[2], &public] {
        let err = launch(&client, target, &signed).await.err();
        assert_eq!(
            err,
            Some((401, "state_not_found".to_owned())),
            "a replay through {target}"
        );
        counts.replays_refused += 1;
    }

    // 3. Two copies of one launch racing on two instances: exactly one wins.
    for round in 0..10 {
        let (_, spec) = specs(&format!("user-race-{round}")).swap_remove(0);
        let signed = login(&client, &cluster.lms, &public, &urls[round % 3], &spec)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            launch(&client, &urls[(round + 1) % 3], &signed),
            launch(&client, &urls[(round + 2) % 3], &signed)
        );
        counts.attempted += 1;
        match (&a, &b) {
            (Ok(_), Err(e)) | (Err(e), Ok(_)) => {
                assert_eq!(e, &(401, "state_not_found".to_owned()), "the race's loser");
                counts.succeeded += 1;
                counts.replays_refused += 1;
                accepted.push(signed);
            }
            (Ok(_), Ok(_)) => counts.accepted_twice += 1,
            (Err(x), Err(y)) => panic!("both copies refused: {x:?} {y:?}"),
        }
    }

    // 4. One instance killed mid-load: only launches in flight on it may
    //    fail (HAProxy's 502, or the connection closed under the request;
    //    never a 500), the load balancer takes it out, every other launch
    //    succeeds.
    let victim = cluster.instances.pop().unwrap();
    let victim = Arc::new(Mutex::new(victim));
    let v = victim.clone();
    let (attempts, began, _) = load_with_fault(
        &cluster,
        || async move { v.lock().unwrap().proc.kill() },
        Duration::from_secs(5),
    )
    .await;
    let summary = describe(&attempts);
    let failed: Vec<_> = attempts.iter().filter(|a| a.outcome.is_err()).collect();
    assert!(
        failed.len() <= WORKERS,
        "killing one instance: {} launches failed, expected at most the {WORKERS} in flight ({summary})",
        failed.len()
    );
    for a in &failed {
        let (status, code) = a.outcome.as_ref().err().unwrap();
        assert!(
            matches!(status, 0 | 502 | 503 | 504) && a.at + Duration::from_secs(2) >= began,
            "killing one instance: a launch at {:?} (kill at {began:?}) failed with {status} {code} ({summary})",
            a.at
        );
    }
    assert!(
        attempts.iter().filter(|a| a.at > began).count() > WORKERS,
        "killing one instance: too few launches after the kill ({summary})"
    );
    println!("instance killed: {summary}");
    counts.add(&attempts);
    accepted.extend(attempts.into_iter().filter_map(|a| a.outcome.ok()));
    // It comes back and rejoins.
    let mut victim = Arc::try_unwrap(victim).ok().unwrap().into_inner().unwrap();
    victim.start();
    wait_healthy(&client, &victim.url(), "the restarted instance").await;
    cluster.instances.push(victim);

    // 5. Redis (states' nonces and launch data) crashed and restarted mid-load.
    let redis = Arc::new(Mutex::new(std::mem::replace(
        &mut cluster.redis,
        Redis {
            dir: PathBuf::new(),
            port: 0,
            proc: Proc(None),
        },
    )));
    let r = redis.clone();
    let watch = Arc::new(Mutex::new(None));
    let (w, c, u) = (watch.clone(), client.clone(), urls.clone());
    let (attempts, began, ended) = load_with_fault(
        &cluster,
        || async move {
            r.lock().unwrap().crash();
            tokio::time::sleep(Duration::from_secs(3)).await;
            r.lock().unwrap().start();
            *w.lock().unwrap() = Some(tokio::spawn(watch_health(c, u)));
        },
        Duration::from_secs(12),
    )
    .await;
    let handle = watch.lock().unwrap().take().unwrap();
    let healthy = handle.await.unwrap();
    println!("Redis restarted: each instance's /healthz answered 200 again after {healthy:?}");
    cluster.redis = Arc::try_unwrap(redis).ok().unwrap().into_inner().unwrap();
    let recovered = check_outage(
        "Redis restart",
        &attempts,
        began,
        ended,
        Duration::from_secs(15),
    );
    println!(
        "Redis restarted: {}; resumed {recovered:?} after the restart",
        describe(&attempts)
    );
    counts.add(&attempts);
    accepted.extend(attempts.into_iter().filter_map(|a| a.outcome.ok()));

    // 6. PostgreSQL (registrations, keys) crashed and restarted mid-load.
    let pg = &cluster.pg;
    let watch = Arc::new(Mutex::new(None));
    let (w, c, u) = (watch.clone(), client.clone(), urls.clone());
    let (attempts, began, ended) = load_with_fault(
        &cluster,
        || async move {
            pg.crash();
            tokio::time::sleep(Duration::from_secs(3)).await;
            pg.start();
            *w.lock().unwrap() = Some(tokio::spawn(watch_health(c, u)));
        },
        Duration::from_secs(12),
    )
    .await;
    let handle = watch.lock().unwrap().take().unwrap();
    let healthy = handle.await.unwrap();
    println!("PostgreSQL restarted: each instance's /healthz answered 200 again after {healthy:?}");
    let recovered = check_outage(
        "PostgreSQL restart",
        &attempts,
        began,
        ended,
        Duration::from_secs(15),
    );
    println!(
        "PostgreSQL restarted: {}; resumed {recovered:?} after the restart",
        describe(&attempts)
    );
    counts.add(&attempts);
    accepted.extend(attempts.into_iter().filter_map(|a| a.outcome.ok()));

    // 7. Every accepted launch, replayed through the load balancer after all
    //    of that: none is accepted again.
    let mut seen = HashSet::new();
    for s in &accepted {
        assert!(seen.insert(s.state.clone()), "a state was issued twice");
    }
    for s in &accepted {
        match launch(&client, &public, s).await {
            Ok(_) => counts.accepted_twice += 1,
            Err((401, code)) if code == "state_not_found" => counts.replays_refused += 1,
            Err(e) => panic!("a replay was refused with {e:?}, expected 401 state_not_found"),
        }
    }

    println!(
        "multi-instance launches: attempted {}, succeeded {}, refused {:?}; replays refused {}; accepted twice {}",
        counts.attempted,
        counts.succeeded,
        counts.refused,
        counts.replays_refused,
        counts.accepted_twice
    );
    assert_eq!(counts.accepted_twice, 0, "a launch was accepted twice");
    assert!(counts.refused.keys().all(|k| !k.starts_with("500")));
}

fn query_param(url: &str, name: &str) -> Option<String> {
    url.split_once('?')?
        .1
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// The absolute action URL of the inspector's form posting to `path`.
fn action_of(base: &str, page: &str, path: &str) -> String {
    let marker = format!("action=\"{path}?");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no form for {path}: {page}"));
    let action = &page[start + "action=\"".len()..];
    let action = &action[..action.find('"').unwrap()];
    format!("{base}{}", action.replace("&amp;", "&"))
}

/// N concurrent AGS score posts spread over the instances by the load
/// balancer cause one token request per scope set at the platform: the
/// instances share their service-token cache. The panel reads and creates
/// line items with one token (its AGS scopes); the scores are queued in the
/// grade outbox and sent by whichever instance's worker leases them, with a
/// token of the score scope: two token requests in all, however many
/// instances and posts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_score_posts_across_instances_make_one_token_request() {
    if !enabled() {
        return;
    }
    const POSTS: usize = 24;
    let cluster = start_cluster("tokens", 3).await;
    let (client, public) = (cluster.client.clone(), cluster.public.clone());
    let (_, spec) = specs("teacher").swap_remove(0);
    let signed = login(&client, &cluster.lms, &public, &public, &spec)
        .await
        .unwrap();
    let (inspector, cookie) = launch(&client, &public, &signed).await.unwrap();
    let id = query_param(&inspector, "lti_launch_id").expect("a launch id");
    let ags_url = format!("{public}/lti/app/ags?lti_launch_id={id}");
    let page = send(&client, Method::GET, &ags_url, Some(&cookie), None)
        .await
        .unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let created = send(
        &client,
        Method::POST,
        &action_of(&public, &page.body, "/lti/app/ags/lineitems"),
        Some(&cookie),
        Some(form(&[
            ("label", "Quiz"),
            ("score_maximum", "10"),
            ("resource_id", "quiz-1"),
        ])),
    )
    .await
    .unwrap();
    assert_eq!(created.status, 200, "{}", created.body);
    let page = send(&client, Method::GET, &ags_url, Some(&cookie), None)
        .await
        .unwrap();
    let option = page
        .body
        .split("<option value=\"")
        .skip(1)
        .find(|o| o.contains(">Quiz</option>"))
        .unwrap_or_else(|| panic!("no Quiz line item: {}", page.body));
    let lineitem = option[..option.find('"').unwrap()].replace("&amp;", "&");
    let score_action = action_of(&public, &page.body, "/lti/app/ags/scores");

    let posts = (0..POSTS).map(|k| {
        let (client, action, cookie, lineitem) = (
            client.clone(),
            score_action.clone(),
            cookie.clone(),
            lineitem.clone(),
        );
        tokio::spawn(async move {
            let body = form(&[
                ("lineitem", &lineitem),
                ("user_id", &format!("learner-{k}")),
                ("score_given", &(k % 10).to_string()),
                ("score_maximum", "10"),
            ]);
            send(&client, Method::POST, &action, Some(&cookie), Some(body))
                .await
                .unwrap()
        })
    });
    let posts: Vec<_> = posts.collect();
    for p in posts {
        let answer = p.await.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(
            answer.body.contains("to the grade outbox"),
            "{}",
            answer.body
        );
    }
    // The workers deliver every score (each instance's worker wakes on its
    // own submits and polls for the others').
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.lms.score_posts.load(Ordering::SeqCst) < POSTS {
        assert!(
            Instant::now() < deadline,
            "only {} of {POSTS} scores arrived",
            cluster.lms.score_posts.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let tokens = cluster.lms.token_requests.load(Ordering::SeqCst);
    println!(
        "{POSTS} score posts over 3 instances: {} scores delivered, {tokens} token request(s) at the platform",
        cluster.lms.score_posts.load(Ordering::SeqCst)
    );
    assert_eq!(
        tokens, 2,
        "token requests at the platform: one per scope set"
    );
}

/// `docs/deployment.md` shows `deploy/haproxy.cfg` (without its comments,
/// with its placeholders filled in), not a configuration of its own.
#[test]
fn the_deployment_guide_shows_the_haproxy_template() {
    let guide = include_str!("../../../docs/deployment.md");
    let block = guide
        .split("```haproxy\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a haproxy block in docs/deployment.md");
    let servers = [
        "    server lti1 10.0.0.11:3000",
        "    server lti2 10.0.0.12:3000",
        "    server lti3 10.0.0.13:3000",
    ]
    .map(|s| s.to_owned());
    let filled = HAPROXY_TEMPLATE
        .replace(
            "{{BIND}}",
            ":443 ssl crt /etc/haproxy/tool.pem alpn h2,http/1.1",
        )
        .replace("{{SERVERS}}", &servers.join("\n"));
    let significant = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(|l| l.trim_end().to_owned())
            .collect()
    };
    assert_eq!(significant(block), significant(&filled));
    // And the test's own rendering keeps every line but the placeholders.
    let rendered = haproxy_config("127.0.0.1:1", &["127.0.0.1:2".to_owned()]);
    assert!(!rendered.contains("{{"), "{rendered}");
    assert!(rendered.contains("    server lti1 127.0.0.1:2\n"));
}
