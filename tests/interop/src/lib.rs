#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Where `setup.sh` installed the peers: `$LTI_INTEROP_DIR`, else
/// `$CARGO_TARGET_DIR/interop`, else `<workspace>/target/interop`.
pub fn peers_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("LTI_INTEROP_DIR") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    target.join("interop")
}

/// The repository root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The installed peers.
#[derive(Debug, Clone)]
pub struct Peers {
    dir: PathBuf,
}

/// `Some(peers)` when `setup.sh` installed them. Otherwise prints why and returns
/// `None`, or panics when `LTI_INTEROP=1` (CI), so a missing peer fails loudly.
pub fn peers(test: &str) -> Option<Peers> {
    let dir = peers_dir();
    let stamp = dir.join(".stamp");
    if stamp.is_file() {
        return Some(Peers { dir });
    }
    let why = format!(
        "{test}: skipped: the interop peers are not installed in {} (run tests/interop/setup.sh)",
        dir.display()
    );
    if std::env::var("LTI_INTEROP").as_deref() == Ok("1") {
        panic!("{why}; LTI_INTEROP=1 requires them");
    }
    eprintln!("{why}");
    None
}

/// A running peer script; killed when dropped.
#[derive(Debug)]
pub struct PeerProcess {
    child: Child,
    /// The first JSON line the peer printed (it includes its `url`).
    pub ready: Value,
}

impl PeerProcess {
    /// The peer's base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> &str {
        self.ready["url"].as_str().unwrap_or_default()
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Peers {
    /// The Python interpreter of the peers' virtualenv.
    pub fn python(&self) -> PathBuf {
        self.dir.join("venv/bin/python")
    }

    /// The peers' `node_modules`.
    pub fn node_modules(&self) -> PathBuf {
        self.dir.join("node_modules")
    }

    /// Starts `tests/interop/peers/<script>` (Python for `.py`, Node otherwise)
    /// with `config` as its single argument (JSON) and waits (up to 30 s) for the
    /// JSON line it prints when it listens.
    ///
    /// # Panics
    /// When the peer cannot start or exits before it is ready.
    pub fn spawn(&self, script: &str, config: &Value) -> PeerProcess {
        let path = workspace_root().join("tests/interop/peers").join(script);
        let mut cmd = if script.ends_with(".py") {
            Command::new(self.python())
        } else {
            let mut c = Command::new("node");
            c.env("NODE_PATH", self.node_modules());
            c
        };
        let mut child = cmd
            .arg(&path)
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting peer {script}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Keep draining so the peer never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                eprintln!("[peer] {line}");
            }
        });
        let start = Instant::now();
        let line = loop {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                break line;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("peer {script} exited before it was ready: {status}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "peer {script} not ready after 30 s"
            );
        };
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("peer {script} printed {line:?}, not JSON: {e}"));
        PeerProcess { child, ready }
    }
}
