//! Exactly-once across processes, and after a process is killed.
//!
//! The parent tests start this same test binary again as child processes
//! (the `child_process` test, which does nothing unless `LTI_STORE_CHILD_URL`
//! is set). A child claims launch states and records nonces on the store the
//! parent names, from several tasks at once, and prints one `WON kind key`
//! line for each claim the store acknowledged.
//!
//! - Two children racing over the same keys on one SQLite file or one
//!   PostgreSQL schema: every key is won by exactly one of them.
//! - A child killed (SIGKILL) in the middle of its load: after the restart
//!   no state or nonce it was told it had won can be won again.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(all(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "redis"
))]

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ISS, cipher, drop_pg_schema, remove_sqlite_file, server_url, unique};
use lti_registry::{Clock, LaunchState, RegistryError, Store, SystemClock};
use lti_store::{OpenOptions, open};

const CHILD_URL: &str = "LTI_STORE_CHILD_URL";
const CHILD_SCHEMA: &str = "LTI_STORE_CHILD_SCHEMA";
const CHILD_KEYS: &str = "LTI_STORE_CHILD_KEYS";
const CHILD_REVERSE: &str = "LTI_STORE_CHILD_REVERSE";

fn options(schema: Option<&str>) -> OpenOptions {
    let opts = OpenOptions::new(cipher()).with_timeout(Duration::from_secs(20));
    match schema {
        Some(s) => opts.with_postgres_schema(s),
        None => opts,
    }
}

/// The child: claims `s{i}` and records nonce `n{i}` for every `i` below
/// `LTI_STORE_CHILD_KEYS`, from 8 tasks, printing each acknowledged win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let Ok(url) = std::env::var(CHILD_URL) else {
        return;
    };
    let schema = std::env::var(CHILD_SCHEMA).ok();
    let keys: usize = std::env::var(CHILD_KEYS).unwrap().parse().unwrap();
    let reverse = std::env::var(CHILD_REVERSE).is_ok();
    let store = open(&url, &options(schema.as_deref())).await.unwrap();
    // Ready; start when the parent says so (all children at once).
    println!("READY");
    let mut go = String::new();
    std::io::stdin().read_line(&mut go).unwrap();
    let now = SystemClock.now();
    let mut order: Vec<usize> = (0..keys).collect();
    if reverse {
        order.reverse();
    }
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        let mine: Vec<usize> = order.iter().copied().skip(t).step_by(8).collect();
        tasks.push(tokio::spawn(async move {
            for i in mine {
                let state = format!("s{i}");
                match store.launch_states.consume_state(&state).await {
                    Ok(_) => println!("WON state {state}"),
                    Err(RegistryError::StateNotFound) => {}
                    Err(e) => panic!("consume {state}: {e}"),
                }
                let nonce = format!("n{i}");
                match store.nonces.record_nonce(ISS, &nonce, now + 600).await {
                    Ok(()) => println!("WON nonce {nonce}"),
                    Err(RegistryError::NonceReplayed { .. }) => {}
                    Err(e) => panic!("record {nonce}: {e}"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

fn spawn_child(url: &str, schema: Option<&str>, keys: usize, reverse: bool) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_URL, url)
    .env(CHILD_KEYS, keys.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    if let Some(s) = schema {
        cmd.env(CHILD_SCHEMA, s);
    }
    if reverse {
        cmd.env(CHILD_REVERSE, "1");
    }
    cmd.spawn().unwrap()
}

/// The `WON kind key` lines of a child's output.
fn wins(lines: impl Iterator<Item = String>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| {
            let rest = &l[l.find("WON ")? + 4..];
            let (kind, key) = rest.split_once(' ')?;
            Some((kind.to_owned(), key.to_owned()))
        })
        .collect()
}

async fn save_states(store: &Store, keys: usize) {
    let now = SystemClock.now();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in (t..keys).step_by(16) {
                let s = LaunchState::new(
                    format!("s{i}"),
                    "n",
                    ISS,
                    "c",
                    "https://tool.example/launch",
                    now,
                    600,
                );
                store.launch_states.save_state(&s).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Starts children and lets them go at once, once each has opened its
/// store; returns each child with its output.
fn start_children(
    url: &str,
    schema: Option<&str>,
    keys: usize,
    count: usize,
) -> Vec<(std::process::Child, BufReader<std::process::ChildStdout>)> {
    let mut children: Vec<_> = (0..count)
        .map(|i| {
            let mut child = spawn_child(url, schema, keys, i % 2 == 1);
            let out = BufReader::new(child.stdout.take().unwrap());
            (child, out)
        })
        .collect();
    for (_, out) in &mut children {
        let mut line = String::new();
        // libtest may have written the test's name on the same line.
        while !line.trim_end().ends_with("READY") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "a child ended before it was ready"
            );
        }
    }
    for (child, _) in &mut children {
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    }
    children
}

async fn two_processes_claim_each_key_once(url: &str, schema: Option<&str>) {
    const KEYS: usize = 1500;
    let store = open(url, &options(schema)).await.unwrap();
    save_states(&store, KEYS).await;
    let mut all = Vec::new();
    let mut per_child = Vec::new();
    for (mut child, out) in start_children(url, schema, KEYS, 2) {
        let won = wins(out.lines().map_while(Result::ok));
        assert!(child.wait().unwrap().success(), "a child failed");
        per_child.push(won.len());
        all.extend(won);
    }
    all.sort();
    let total = all.len();
    all.dedup();
    assert_eq!(all.len(), total, "a key was won twice");
    assert_eq!(total, 2 * KEYS, "every state and nonce is won once");
    // Which child wins how much is up to the scheduler: on a loaded machine
    // one child can take the file's write lock for the whole run. The claims
    // above hold either way; say when the race did not happen.
    if per_child.contains(&0) {
        eprintln!("note: one child won every key this run {per_child:?}; no interleaving observed");
    }
}

async fn killed_process_wins_stay_won(url: &str, schema: Option<&str>) {
    const KEYS: usize = 4000;
    const KILL_AFTER: usize = 300;
    let store = open(url, &options(schema)).await.unwrap();
    save_states(&store, KEYS).await;
    let (mut child, mut out) = start_children(url, schema, KEYS, 1).pop().unwrap();
    let mut acknowledged = Vec::new();
    let mut line = String::new();
    while acknowledged.len() < KILL_AFTER {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        acknowledged.extend(wins(std::iter::once(line.trim_end().to_owned())));
    }
    // SIGKILL, mid-load: no shutdown, no flush, no close.
    child.kill().unwrap();
    child.wait().unwrap();
    // Lines already written before the kill.
    acknowledged.extend(wins(out.lines().map_while(Result::ok)));
    assert!(
        acknowledged.len() >= KILL_AFTER && acknowledged.len() < 2 * KEYS,
        "killed mid-load after {} wins",
        acknowledged.len()
    );
    drop(store);

    // The restart: a fresh store on the same database.
    let store = open(url, &options(schema)).await.unwrap();
    let now = SystemClock.now();
    for (kind, key) in &acknowledged {
        match kind.as_str() {
            "state" => assert!(
                matches!(
                    store.launch_states.consume_state(key).await,
                    Err(RegistryError::StateNotFound)
                ),
                "consumed state {key} came back"
            ),
            _ => assert!(
                matches!(
                    store.nonces.record_nonce(ISS, key, now + 600).await,
                    Err(RegistryError::NonceReplayed { .. })
                ),
                "recorded nonce {key} came back"
            ),
        }
    }
}

fn sqlite_file(tag: &str) -> (std::path::PathBuf, String) {
    let path = std::env::temp_dir().join(format!("{}.db", unique(tag)));
    let url = format!("sqlite://{}", path.display());
    (path, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_processes_on_one_file_claim_each_key_once() {
    let (path, url) = sqlite_file("lti_store_2proc");
    two_processes_claim_each_key_once(&url, None).await;
    remove_sqlite_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_process_killed_mid_load_never_gives_back_a_consumed_state_or_nonce() {
    let (path, url) = sqlite_file("lti_store_kill");
    killed_process_wins_stay_won(&url, None).await;
    remove_sqlite_file(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_processes_claim_each_key_once() {
    let Some(url) = server_url("LTI_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = unique("lti_test_2proc").replace('-', "_");
    two_processes_claim_each_key_once(&url, Some(&schema)).await;
    drop_pg_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_process_killed_mid_load_never_gives_back_a_consumed_state_or_nonce() {
    let Some(url) = server_url("LTI_TEST_POSTGRES_URL") else {
        return;
    };
    let schema = unique("lti_test_kill").replace('-', "_");
    killed_process_wins_stay_won(&url, Some(&schema)).await;
    drop_pg_schema(&url, &schema).await;
}
