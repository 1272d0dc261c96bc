//! The `lti` binary. Each subcommand is one variant of [`Command`] and one
//! `run_*` function, so adding a subcommand is two small, local edits.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lti_app::{AppError, Config};

#[derive(Parser)]
#[command(
    name = "lti",
    version,
    about = "An LTI 1.3 / 1.1 tool: keys, server and launch inspector"
)]
struct Cli {
    /// The log line format on stderr: `text` (human-readable) or `json` (one
    /// JSON object per line, for log shippers).
    #[arg(long, global = true, env = "LTI_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// `2026-01-01T00:00:00Z  INFO target: message key=value`.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `fields`
    /// (the message and the event's fields) and the enclosing `spans`.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the tool's RSA signing key (private.pem, mode 0600) and its public jwks.json.
    Keygen {
        /// The directory to write into (created when missing).
        #[arg(long)]
        out: PathBuf,
        /// Key size in bits: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Run the tool (login, launch, JWKS, health check and the launch inspector).
    Serve {
        /// The configuration file; without one, the embedded default is used
        /// (SQLite under ./data, a key generated on first start).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
        /// Overrides `server.bind`.
        #[arg(long, env = "LTI_BIND")]
        bind: Option<String>,
    },
    /// Validate a configuration file and print every problem.
    CheckConfig {
        /// The configuration file.
        file: PathBuf,
    },
    /// Run the dev platform: a minimal LMS (a course, users, "launch as" buttons,
    /// deep linking, a grade book fed by AGS, a roster served through NRPS).
    Platform {
        /// The platform configuration file (`[platform]`, `[[tools]]`); without
        /// one, no tools are registered.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides `platform.bind` (default 127.0.0.1:4000).
        #[arg(long)]
        bind: Option<String>,
        /// Keep the platform key in this directory (platform.pem, reused on
        /// restart); default: a fresh key each start.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Run the dev platform and the tool together, registered with each other,
    /// and print the one URL to open.
    Demo {
        /// The tool's address (port 0 picks a free one); served as 127.0.0.1.
        #[arg(long, default_value = lti_app::devplatform::DEFAULT_DEMO_TOOL_BIND)]
        tool_bind: String,
        /// The platform's address (port 0 picks a free one); served as localhost.
        #[arg(long, default_value = lti_app::devplatform::DEFAULT_PLATFORM_BIND)]
        platform_bind: String,
        /// Keep the tool and platform keys in this directory (reused on restart);
        /// default: fresh keys in a temporary directory.
        #[arg(long)]
        keys: Option<PathBuf>,
    },
    /// Manage LTI 1.1 consumers.
    Consumers {
        #[command(subcommand)]
        command: ConsumersCommand,
    },
}

#[derive(Subcommand)]
enum ConsumersCommand {
    /// Import `key secret` lines (`#` comments) into the configured store.
    Import {
        /// The file to import.
        file: PathBuf,
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Add a consumer with a generated secret (and a generated key unless
    /// --key is given); prints the key and the secret once.
    Add {
        /// The consumer's display name (e.g. the LMS it stands for).
        name: String,
        /// Use this consumer key instead of a generated one.
        #[arg(long)]
        key: Option<String>,
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the consumers (key, name, instance GUID; never secrets).
    List {
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Remove a consumer by key.
    Remove {
        /// The consumer key.
        key: String,
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Write the consumers to FILE (mode 0600): keys and names, and with
    /// --with-secrets the `key secret` lines `import` reads.
    Export {
        /// The file to write.
        file: PathBuf,
        /// Include the shared secrets.
        #[arg(long)]
        with_secrets: bool,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Keygen { out, bits, force } => run_keygen(out, bits, force),
        Command::Serve { config, bind } => block_on(run_serve(config, bind)),
        Command::CheckConfig { file } => return run_check_config(&file),
        Command::Platform { config, bind, keys } => {
            block_on(lti_app::devplatform::run_platform(config, bind, keys))
        }
        Command::Demo {
            tool_bind,
            platform_bind,
            keys,
        } => block_on(lti_app::devplatform::run_demo(
            lti_app::devplatform::DemoOptions {
                tool_bind,
                platform_bind,
                keys_dir: keys,
            },
            lti_app::shutdown_signal(),
        )),
        Command::Consumers { command } => block_on(run_consumers(command)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr at the level `RUST_LOG` names (default `info`): plain text,
/// coloured only when stderr is a terminal (a log file or journald gets plain
/// lines), or one JSON object per line with `--log-format json`.
fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    };
}

/// Runs `f` on a tokio runtime sized to the CPUs this process may use.
///
/// With one CPU (a `taskset` pin, a cgroup quota of one CPU: what
/// `available_parallelism` reports), a current-thread runtime: every task, the
/// I/O driver and the timers run on the main thread, where a multi-thread runtime
/// would add a worker thread that the main thread and the driver hand work to and
/// wake across. Otherwise, or when `TOKIO_WORKER_THREADS` names a worker count, a
/// multi-thread runtime with tokio's default sizing.
fn block_on<F: std::future::Future<Output = Result<(), AppError>>>(f: F) -> Result<(), AppError> {
    let one_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1)
        && std::env::var_os("TOKIO_WORKER_THREADS").is_none();
    let mut builder = if one_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = builder.enable_all().build().map_err(|e| AppError::Io {
        action: "starting the async runtime for",
        path: PathBuf::from("lti"),
        source: e,
    })?;
    runtime.block_on(f)
}

fn run_keygen(out: PathBuf, bits: usize, force: bool) -> Result<(), AppError> {
    let key = lti_app::keygen(&out, bits, force)?;
    println!(
        "Wrote {} (mode 0600) and {}",
        key.private_key.display(),
        key.jwks.display()
    );
    println!("kid: {}", key.kid);
    Ok(())
}

fn load_config(path: Option<&PathBuf>) -> Result<Config, AppError> {
    match path {
        Some(p) => Config::load(p).map_err(AppError::Config),
        None => Ok(lti_app::embedded_default()),
    }
}

async fn run_serve(config: Option<PathBuf>, bind: Option<String>) -> Result<(), AppError> {
    let embedded = config.is_none();
    let mut config = load_config(config.as_ref())?;
    if let Some(bind) = bind {
        config.server.bind = bind;
    }
    let addr = config.bind_addr().map_err(|p| AppError::Config(vec![p]))?;
    let app = lti_app::prepare(&config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| AppError::Io {
            action: "binding",
            path: PathBuf::from(addr.to_string()),
            source: e,
        })?;
    if app.generated_key {
        println!(
            "Generated a new signing key (kid {}) in {}",
            app.kid,
            config.keys.dir.display()
        );
    }
    println!("lti serve is listening on http://{addr}");
    println!("{}", app.urls);
    if embedded {
        println!(
            "No configuration file given: using the embedded default (storage {}, keys in {}).",
            config.storage.url,
            config.keys.dir.display()
        );
        println!(
            "After registering, add the platform's issuer, client id, URLs and deployment id under [[platforms]] in a config file (see `lti check-config`) and restart with --config FILE."
        );
    }
    lti_app::run(app, listener, lti_app::shutdown_signal()).await
}

fn run_check_config(file: &std::path::Path) -> ExitCode {
    match Config::load(file) {
        Ok(config) => {
            println!(
                "{}: OK ({} platform(s), {} consumer(s))",
                file.display(),
                config.platforms.len(),
                config.consumers.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{}: {} problem(s)", file.display(), problems.len());
            for p in problems {
                eprintln!("  {p}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The store the configuration names, opened with the app key's cipher.
async fn open_configured_store(config: Option<&PathBuf>) -> Result<lti_registry::Store, AppError> {
    let config = load_config(config)?;
    let cipher =
        lti_registry::SecretCipher::aes256gcm(lti_app::app_key(&config.keys.dir)?, vec![])?;
    let store = lti_store::open_split(
        &config.storage.url,
        config.storage.nonce_url.as_deref(),
        &lti_store::OpenOptions::new(cipher),
    )
    .await?;
    Ok(store)
}

async fn run_consumers(command: ConsumersCommand) -> Result<(), AppError> {
    match command {
        ConsumersCommand::Import { file, config } => {
            let store = open_configured_store(config.as_ref()).await?;
            let n = lti_app::import_consumers(&store, &file).await?;
            println!("Imported {n} consumer(s) from {}", file.display());
        }
        ConsumersCommand::Add { name, key, config } => {
            let store = open_configured_store(config.as_ref()).await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            let added = lti_app::add_consumer(&store, &name, key.as_deref(), now).await?;
            println!("Added consumer {:?}", added.name);
            println!("  Consumer key    : {}", added.key);
            println!("  Shared secret   : {}", added.secret.expose());
            println!(
                "The secret is shown only now: enter both in the LMS's external tool settings."
            );
        }
        ConsumersCommand::List { config } => {
            let store = open_configured_store(config.as_ref()).await?;
            let all = lti_app::list_consumers(&store).await?;
            if all.is_empty() {
                println!("No consumers.");
            }
            for c in all {
                let guid = c.instance_guid.as_deref().unwrap_or("-");
                println!("{}\t{}\tinstance {guid}", c.key, c.name);
            }
        }
        ConsumersCommand::Remove { key, config } => {
            let store = open_configured_store(config.as_ref()).await?;
            lti_app::remove_consumer(&store, &key).await?;
            println!("Removed consumer {key}");
        }
        ConsumersCommand::Export {
            file,
            with_secrets,
            force,
            config,
        } => {
            let store = open_configured_store(config.as_ref()).await?;
            let n = lti_app::export_consumers(&store, &file, with_secrets, force).await?;
            let what = if with_secrets {
                "with their secrets"
            } else {
                "without secrets"
            };
            println!(
                "Exported {n} consumer(s) {what} to {} (mode 0600)",
                file.display()
            );
        }
    }
    Ok(())
}
