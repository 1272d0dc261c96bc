//! End to end over loopback HTTP: a tool server (a child process, pinned by
//! `bench/run.sh`'s `taskset` to its own core) against this load generator. The
//! server is `lti serve` (`e2e`) or the ltijs tool server of the interop suite,
//! `tests/interop/peers/ltijs_tool_peer.js` (`e2e-ltijs`: ltijs 5.9.9 with its
//! sequelize/SQLite store); both run the same cycles with the same method.
//!
//! One cycle = the login initiation (`GET /lti/login`, ltijs `GET /login`: 302 to
//! the platform with state and nonce, and the state cookie) + the launch (`POST
//! /lti/launch`, ltijs `POST /`: the id_token for that nonce; 303 to the inspector,
//! ltijs 302 to its app with its `ltik`; neither redirect is followed). The
//! id_token must carry the nonce the login issued, so each launch needs a fresh
//! RS256 signature; signing is the platform's work, not the tool's, so it happens
//! between the two timed phases: all logins of a repetition are timed, then their
//! tokens are signed (untimed), then all launches are timed.
//! cycles/s = cycles / (login phase + launch phase).
//!
//! Every request count is bounded (`CYCLES` per repetition) and only 127.0.0.1 is
//! contacted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

use crate::emit;
use crate::fixture::{self, CLIENT_ID, DEPLOYMENT};

/// Concurrent connections of the load generator.
const CONCURRENCY: usize = 32;

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Which tool server is under load.
pub(crate) enum ToolServer<'a> {
    /// `lti serve`, this binary.
    LtiServe(&'a Path),
    /// ltijs, this Node script (`tests/interop/peers/ltijs_tool_peer.js`).
    Ltijs(&'a Path),
}

/// A running tool server and its routes.
struct Target {
    label: String,
    /// The store (and for several instances, how many), as reported.
    store: String,
    url: String,
    login_path: &'static str,
    launch_path: &'static str,
    /// The `target_link_uri` (and the id_token's) path.
    app_path: &'static str,
    launch_status: StatusCode,
    /// A GET that answers 200 once the server is ready.
    health_path: &'static str,
}

struct LoginResult {
    state: String,
    nonce: String,
    cookie: String,
}

fn param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn jwks_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding the JWKS server");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let body = Bytes::from(
        serde_json::to_vec(&json!({"keys": [fixture::signing_key().public_jwk()]})).expect("jwks"),
    );
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = body.clone();
                    async move {
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header(header::CONTENT_TYPE, "application/json")
                                .body(Full::new(body))
                                .expect("response"),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    base
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn server_cpu() -> String {
    std::env::var("E2E_SERVER_CPU").unwrap_or_else(|_| "1".into())
}

/// The store `lti serve` runs on (`E2E_STORE`): `memory` (the default),
/// `sqlite` (a fresh file, the application's default backend), `postgres`
/// (`E2E_POSTGRES_URL`) or `postgres+redis` (states, nonces and launch data in
/// `E2E_REDIS_URL`, the documented multi-instance setup). Returns the label
/// and the `[storage]` section.
fn store_config(dir: &Path) -> (String, String) {
    let store = std::env::var("E2E_STORE").unwrap_or_else(|_| "memory".into());
    let pg = || {
        std::env::var("E2E_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/test".into())
    };
    let redis =
        || std::env::var("E2E_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let section = match store.as_str() {
        "memory" => "url = \"memory://\"".to_owned(),
        "sqlite" => {
            let db = dir.join("e2e-store");
            let _ = std::fs::remove_dir_all(&db);
            format!("url = \"sqlite://{}\"", db.join("lti.db").display())
        }
        "postgres" => format!("url = \"{}\"", pg()),
        "postgres+redis" => format!("url = \"{}\"\nnonce_url = \"{}\"", pg(), redis()),
        other => panic!(
            "E2E_STORE: expected memory, sqlite, postgres or postgres+redis, found {other:?}"
        ),
    };
    (store, section)
}

/// How many `lti serve` instances (`E2E_INSTANCES`, default 1). With more
/// than one they run behind HAProxy, configured from `deploy/haproxy.cfg`
/// (the template `docs/deployment.md` documents and the multi-instance test
/// runs), every process (the instances and HAProxy) on the server's core.
fn instances() -> usize {
    std::env::var("E2E_INSTANCES")
        .ok()
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(1)
}

/// The load balancer's configuration template.
const HAPROXY_TEMPLATE: &str = include_str!("../../../deploy/haproxy.cfg");

/// Waits (bounded) for `GET /healthz` on 127.0.0.1:`port` to answer 200.
fn wait_healthy(port: u16, what: &str) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            let mut head = [0u8; 12];
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .is_ok()
                && s.read_exact(&mut head).is_ok()
                && head.ends_with(b" 200")
        });
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "{what} did not become healthy");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_tool(lti_bin: &Path, dir: &Path, platform: &str) -> (Vec<Served>, Target) {
    let (store, storage) = store_config(dir);
    let count = instances();
    assert!(
        count == 1 || store != "memory",
        "E2E_INSTANCES={count}: expected a store the instances share (sqlite, postgres or postgres+redis), found memory"
    );
    let ports: Vec<u16> = (0..count).map(|_| free_port()).collect();
    let lb_port = if count > 1 { free_port() } else { ports[0] };
    let url = format!("http://127.0.0.1:{lb_port}");
    let keys = dir.join("e2e-keys");
    let _ = std::fs::remove_dir_all(&keys);
    std::fs::create_dir_all(&keys).expect("keys dir");
    std::fs::write(
        keys.join("private.pem"),
        include_str!("../../../tests/fixtures/interop/keys/tool.pem"),
    )
    .expect("tool key");
    let mut served = Vec::new();
    // One after the other: the first one migrates the schema and writes the
    // app secret every other one reads from the shared key directory.
    for (n, port) in ports.iter().enumerate() {
        let config = format!(
            r#"[server]
bind = "127.0.0.1:{port}"
public_url = "{url}"
# The untimed signing between the login and launch phases can outlast the
# 10 s default on a loaded machine; kept-alive connections must survive it.
header_read_timeout_secs = 300

[storage]
{storage}

[keys]
dir = "{keys}"

[[platforms]]
issuer = "{platform}"
client_id = "{CLIENT_ID}"
auth_login_url = "{platform}/auth"
auth_token_url = "{platform}/token"
jwks_url = "{platform}/jwks"
deployment_ids = ["{DEPLOYMENT}"]

# The stand-in platform's JWKS is on loopback.
[egress]
allow_private_addresses = true
"#,
            keys = keys.display()
        );
        let path = dir.join(format!("e2e-lti-{n}.toml"));
        std::fs::write(&path, config).expect("config");
        let child = Command::new("taskset")
            .args(["-c", &server_cpu()])
            .arg(lti_bin)
            .args(["serve", "--config"])
            .arg(&path)
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting lti serve");
        served.push(Served(child));
        if count > 1 {
            wait_healthy(*port, "lti serve");
        }
    }
    let label = if count > 1 {
        let servers: String = ports
            .iter()
            .enumerate()
            .map(|(n, p)| format!("    server lti{} 127.0.0.1:{p}\n", n + 1))
            .collect();
        let cfg = dir.join("e2e-haproxy.cfg");
        std::fs::write(
            &cfg,
            HAPROXY_TEMPLATE
                .replace("{{BIND}}", &format!("127.0.0.1:{lb_port}"))
                .replace("{{SERVERS}}\n", &servers),
        )
        .expect("haproxy config");
        let child = Command::new("taskset")
            .args(["-c", &server_cpu()])
            .args(["haproxy", "-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting haproxy (apt-get install haproxy)");
        served.push(Served(child));
        format!("{store}, {count} instances + haproxy")
    } else {
        store
    };
    let target = Target {
        label: format!("ours (lti serve, {label})"),
        store: label,
        url,
        login_path: "/lti/login",
        launch_path: "/lti/launch",
        app_path: "/lti/app",
        launch_status: StatusCode::SEE_OTHER,
        health_path: "/healthz",
    };
    (served, target)
}

/// Starts the ltijs tool server with the platform registered (`JWK_SET`: the JWKS
/// server's URL, fetched by ltijs on every launch) and waits for the line it prints
/// when it listens. Its store is an in-memory SQLite database, as `lti serve` runs
/// on its memory store here (on a SQLite file, every ltijs write waits for a disk
/// sync). Its maximum token age is set to 300 s, our tool's default (ltijs's own is
/// 10 s, shorter than a phase).
fn start_ltijs(script: &Path, platform: &str) -> (Vec<Served>, Target) {
    let config = json!({
        "iss": platform, "client_id": CLIENT_ID,
        "auth_login_url": format!("{platform}/auth"),
        "auth_token_url": format!("{platform}/token"),
        "key_set_url": format!("{platform}/jwks"),
        "db_dir": null, "token_max_age": 300,
    });
    let mut child = Command::new("taskset")
        .args(["-c", &server_cpu()])
        .arg("node")
        .arg(script)
        .arg(config.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the ltijs tool server (node)");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let ready = match lines.next() {
        Some(Ok(line)) => line,
        other => {
            let _ = child.kill();
            panic!("the ltijs tool server printed no ready line: {other:?}");
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("ready line is JSON");
    let target = Target {
        label: "ltijs 5.9.9 (sequelize, in-memory sqlite)".to_owned(),
        store: "memory".to_owned(),
        url: ready["url"].as_str().expect("url").to_owned(),
        login_path: "/login",
        launch_path: "/",
        app_path: "/",
        launch_status: StatusCode::FOUND,
        health_path: "/keys",
    };
    (vec![Served(child)], target)
}

async fn send(client: &HttpClient, req: Request<Full<Bytes>>) -> (StatusCode, http::HeaderMap) {
    let resp = client
        .request(req)
        .await
        .expect("request to the tool server");
    let (parts, body) = resp.into_parts();
    let _ = body.collect().await;
    (parts.status, parts.headers)
}

async fn login(client: &HttpClient, tool: &Target, platform: &str) -> (LoginResult, Duration) {
    let uri = format!(
        "{url}{login}?iss={platform}&login_hint=hint-1&target_link_uri={url}{app}&lti_message_hint=mh-1&client_id={CLIENT_ID}",
        url = tool.url,
        login = tool.login_path,
        app = tool.app_path,
    );
    let t = Instant::now();
    let (status, headers) = send(
        client,
        Request::get(uri)
            .body(Full::new(Bytes::new()))
            .expect("req"),
    )
    .await;
    let took = t.elapsed();
    assert_eq!(status, StatusCode::FOUND, "login answered {status}");
    let location = headers[header::LOCATION].to_str().expect("location");
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .expect("cookie")
        .split(';')
        .next()
        .expect("cookie pair")
        .to_owned();
    (
        LoginResult {
            state: param(location, "state").expect("state"),
            nonce: param(location, "nonce").expect("nonce"),
            cookie,
        },
        took,
    )
}

async fn launch(client: &HttpClient, tool: &Target, l: &LoginResult, token: &str) -> Duration {
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", &l.state)
        .append_pair("id_token", token)
        .finish();
    let req = Request::post(format!("{}{}", tool.url, tool.launch_path))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, &l.cookie)
        .body(Full::new(Bytes::from(body)))
        .expect("req");
    let t = Instant::now();
    let (status, _) = send(client, req).await;
    let took = t.elapsed();
    assert_eq!(status, tool.launch_status, "launch answered {status}");
    took
}

/// CPU time (user + system) a process has used so far, all its threads, living or
/// exited, from `/proc/<pid>/stat` (`None` where there is no procfs). Clock ticks
/// are taken as 10 ms (`USER_HZ` is 100 on every Linux ABI this runs on).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which sits in parentheses: state is the
    // first, utime the 12th and stime the 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// CPU time used so far by every process whose command name (`comm`) is one
/// of `names` (the database servers: every PostgreSQL backend and helper
/// process is named `postgres`, Redis `redis-server`). Processes that exit
/// during a phase take their time with them; the servers' are long-lived.
fn cpu_time_of(names: &[String]) -> Duration {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let mut total = Duration::ZERO;
    for entry in dir.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if names.iter().any(|n| n == comm.trim_end()) {
            total += cpu_time(pid).unwrap_or_default();
        }
    }
    total
}

/// The database processes to meter (`E2E_DB_PROCS`, comma-separated
/// command names; empty: none).
fn db_procs() -> Vec<String> {
    std::env::var("E2E_DB_PROCS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// CPU time of the server, of this load generator and of the database
/// servers over the timed phases.
#[derive(Default)]
struct CpuMeter {
    server: Duration,
    loadgen: Duration,
    db: Duration,
}

impl CpuMeter {
    /// `server_pids`: every server-side process (the instances and the load
    /// balancer when there are several).
    fn read(server_pids: &[String], db: &[String]) -> Option<(Duration, Duration, Duration)> {
        let mut server = Duration::ZERO;
        for pid in server_pids {
            server += cpu_time(pid)?;
        }
        Some((server, cpu_time("self")?, cpu_time_of(db)))
    }

    fn add(
        &mut self,
        before: Option<(Duration, Duration, Duration)>,
        after: Option<(Duration, Duration, Duration)>,
    ) {
        if let (Some((s0, l0, d0)), Some((s1, l1, d1))) = (before, after) {
            self.server += s1.saturating_sub(s0);
            self.loadgen += l1.saturating_sub(l0);
            self.db += d1.saturating_sub(d0);
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs `cycles` items through `f` with CONCURRENCY workers; returns latencies
/// and wall time.
async fn phase<T, R, F, Fut>(items: Vec<T>, f: F) -> (Vec<R>, Vec<Duration>, Duration)
where
    T: Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = (R, Duration)> + Send,
{
    let n = items.len();
    let queue = Arc::new(std::sync::Mutex::new(
        items.into_iter().enumerate().collect::<Vec<_>>(),
    ));
    let f = Arc::new(f);
    let t = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (queue, f) = (queue.clone(), f.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let next = queue.lock().expect("queue").pop();
                    let Some((i, item)) = next else { break };
                    let (r, d) = f(item).await;
                    out.push((i, r, d));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for w in workers {
        all.extend(w.await.expect("worker"));
    }
    let wall = t.elapsed();
    all.sort_by_key(|(i, _, _)| *i);
    let lat = all.iter().map(|(_, _, d)| *d).collect();
    (all.into_iter().map(|(_, r, _)| r).collect(), lat, wall)
}

/// Runs the end-to-end benchmark.
pub(crate) fn run(server: ToolServer<'_>, dir: &Path, reps: usize, cycles: usize) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let platform = jwks_server().await;
        let (served, tool) = match server {
            ToolServer::LtiServe(bin) => start_tool(bin, dir, &platform),
            ToolServer::Ltijs(script) => start_ltijs(script, &platform),
        };
        let server_pid: Vec<String> = served.iter().map(|s| s.0.id().to_string()).collect();
        let db = db_procs();
        let tool = Arc::new(tool);
        let client: HttpClient = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(CONCURRENCY)
            .build_http();
        // Wait for the server.
        let ready = Instant::now();
        loop {
            let req = Request::get(format!("{}{}", tool.url, tool.health_path))
                .body(Full::new(Bytes::new()))
                .expect("req");
            if let Ok(r) = client.request(req).await
                && r.status().is_success()
            {
                break;
            }
            assert!(
                ready.elapsed() < Duration::from_secs(20),
                "{} did not become ready",
                tool.label
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let key = Arc::new(fixture::signing_key());
        let (mut rates, mut lp50, mut lp99, mut cp50, mut cp99, mut np50, mut np99) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let (mut server_us, mut loadgen_us, mut db_us) = (vec![], vec![], vec![]);
        // One warm-up repetition (JWKS fetch, connection pool), not reported.
        for rep in 0..=reps {
            let mut cpu = CpuMeter::default();
            let (c1, t1, p1) = (client.clone(), tool.clone(), platform.clone());
            let before = CpuMeter::read(&server_pid, &db);
            let (logins, mut login_lat, login_wall) = phase((0..cycles).collect(), move |_| {
                let (c, t, p) = (c1.clone(), t1.clone(), p1.clone());
                async move { login(&c, &t, &p).await }
            })
            .await;
            cpu.add(before, CpuMeter::read(&server_pid, &db));
            let now = crate::now();
            let signed: Vec<(LoginResult, String)> = logins
                .into_iter()
                .map(|l| {
                    let claims = fixture::claims(
                        &platform,
                        &format!("{}{}", tool.url, tool.app_path),
                        &l.nonce,
                        now,
                    );
                    let token = lti_jose::sign(&claims, &key).expect("sign");
                    (l, token)
                })
                .collect();
            let (c2, t2) = (client.clone(), tool.clone());
            let before = CpuMeter::read(&server_pid, &db);
            let (_, mut launch_lat, launch_wall) = phase(signed, move |(l, token)| {
                let (c, t) = (c2.clone(), t2.clone());
                async move { ((), launch(&c, &t, &l, &token).await) }
            })
            .await;
            cpu.add(before, CpuMeter::read(&server_pid, &db));
            if rep == 0 {
                continue;
            }
            let mut cycle_lat: Vec<Duration> = login_lat
                .iter()
                .zip(&launch_lat)
                .map(|(a, b)| *a + *b)
                .collect();
            login_lat.sort();
            launch_lat.sort();
            cycle_lat.sort();
            rates.push(cycles as f64 / (login_wall + launch_wall).as_secs_f64());
            lp50.push(pct(&login_lat, 0.5));
            lp99.push(pct(&login_lat, 0.99));
            np50.push(pct(&launch_lat, 0.5));
            np99.push(pct(&launch_lat, 0.99));
            cp50.push(pct(&cycle_lat, 0.5));
            cp99.push(pct(&cycle_lat, 0.99));
            let per_cycle = |d: Duration| d.as_secs_f64() * 1e6 / cycles as f64;
            server_us.push(per_cycle(cpu.server));
            loadgen_us.push(per_cycle(cpu.loadgen));
            db_us.push(per_cycle(cpu.db));
        }
        emit(
            "e2e",
            &tool.label,
            &rates,
            json!({"unit": "cycles/s", "cycles_per_rep": cycles, "concurrency": CONCURRENCY,
                   "login_request": format!("GET {}", tool.login_path),
                   "launch_request": format!("POST {}", tool.launch_path),
                   "login_p50_ms": lp50, "login_p99_ms": lp99,
                   "launch_p50_ms": np50, "launch_p99_ms": np99,
                   "cycle_p50_ms": cp50, "cycle_p99_ms": cp99,
                   "server_cpu_us_per_cycle": server_us,
                   "loadgen_cpu_us_per_cycle": loadgen_us,
                   "store": tool.store,
                   "instances": instances(),
                   "db_processes": db,
                   "db_cpu_us_per_cycle": if db.is_empty() { None } else { Some(db_us) },
                   "load_average": std::fs::read_to_string("/proc/loadavg").ok()
                       .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))}),
        );
    });
}
