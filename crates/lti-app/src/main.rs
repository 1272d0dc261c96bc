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
        /// Serves `GET /metrics` (Prometheus) on this address; overrides
        /// `metrics.bind` (default: no metrics endpoint).
        #[arg(long, env = "LTI_METRICS_BIND")]
        metrics_bind: Option<String>,
    },
    /// Validate a configuration file (with the environment overrides applied)
    /// and print every problem, or the merged settings and where each came
    /// from (file, env, default), secrets redacted.
    CheckConfig {
        /// The configuration file (default: `LTI_CONFIG`, else the embedded default).
        #[arg(env = "LTI_CONFIG")]
        file: Option<PathBuf>,
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
        /// Keep the replay store (client-assertion `jti`s, nonces) and the
        /// context grants in this store (`postgres://…`, `redis://…`,
        /// `sqlite://…`), shared by every instance (default: in memory).
        #[arg(long, env = "LTI_PLATFORM_STORAGE_URL")]
        storage: Option<String>,
        /// Serves `GET /metrics` (Prometheus) on this address (default: no
        /// metrics endpoint).
        #[arg(long, env = "LTI_METRICS_BIND")]
        metrics_bind: Option<String>,
    },
    /// Run the dev platform and the tool together (the tool registers through
    /// LTI Dynamic Registration at start-up) and print the one URL to open.
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
    /// Manage LTI 1.3 platform registrations and their deployments in the
    /// configured store (running `lti serve` instances see changes on their
    /// next launch).
    Platforms {
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: PlatformsCommand,
    },
    /// Manage the tool's signing keys in the configured store.
    Keys {
        /// The configuration file naming the store (default: the embedded default).
        #[arg(long, env = "LTI_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum PlatformsCommand {
    /// One line per registration: issuer, client id, deployments by status.
    List,
    /// Everything stored about one registration.
    Show {
        /// The platform's issuer.
        issuer: String,
        /// The client id (needed when the issuer has several registrations).
        client_id: Option<String>,
    },
    /// Register a platform (checked like a `[[platforms]]` entry).
    Add {
        /// The platform's issuer (`iss`).
        #[arg(long)]
        issuer: String,
        /// The client id the platform assigned to this tool.
        #[arg(long)]
        client_id: String,
        /// The platform's OIDC authorization endpoint.
        #[arg(long)]
        auth_login_url: String,
        /// The platform's OAuth 2 token endpoint.
        #[arg(long)]
        auth_token_url: String,
        /// The platform's JWKS URL.
        #[arg(long)]
        jwks_url: String,
        /// A deployment id launches may come from (repeat for several).
        #[arg(long = "deployment-id")]
        deployment_ids: Vec<String>,
        /// The quirk profile: canvas, moodle, blackboard, brightspace, sakai,
        /// schoology or generic.
        #[arg(long)]
        profile: Option<String>,
        /// Replace an existing registration of the same issuer and client id.
        #[arg(long)]
        replace: bool,
    },
    /// Import registrations from a mimilti issuer map or a PyLTI1.3
    /// config.json (the format is detected; nothing is written if any entry
    /// is invalid).
    Import {
        /// The JSON file.
        file: PathBuf,
        /// For registrations listing no deployment ids: `pending` (record
        /// each new deployment for approval), `accept` (trust every
        /// deployment, mimilti's behaviour), `accept-first` (trust the first
        /// one, later ones pending) or `reject`.
        #[arg(long, value_enum, default_value = "pending")]
        no_deployments: lti_app::UnknownDeploymentsMode,
        /// Replace registrations of the same issuer and client id.
        #[arg(long)]
        replace: bool,
    },
    /// Approve a registration waiting as pending (dynamic registration with
    /// `approval = "manual"`): its launches are accepted from then on.
    Approve {
        /// The platform's issuer.
        issuer: String,
        /// The client id.
        client_id: String,
    },
    /// Remove a registration (its launches are refused from then on).
    Remove {
        /// The platform's issuer.
        issuer: String,
        /// The client id.
        client_id: String,
    },
    /// Change one deployment of a registration.
    Deployments {
        /// The platform's issuer.
        issuer: String,
        /// The client id.
        client_id: String,
        /// What to do.
        #[arg(value_enum)]
        action: DeploymentAction,
        /// The deployment id.
        deployment_id: String,
    },
}

/// `lti platforms deployments … ACTION`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DeploymentAction {
    /// Add it as active.
    Add,
    /// Accept launches from a pending (or disabled) deployment.
    Approve,
    /// Keep it recorded but refuse its launches.
    Disable,
    /// Forget it.
    Remove,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// The tool's keys: kid, status and dates (never the private part).
    List,
    /// One rotation step: publish a new next key, or (once it has been
    /// published for --min-published seconds) make it the signing key and
    /// retire the old one.
    Rotate {
        /// Key size in bits for a new key: 2048, 3072 or 4096.
        #[arg(long, default_value_t = 2048)]
        bits: usize,
        /// Seconds a next key must have been published before it signs
        /// (default: the tool's JWKS max-age, how long platforms may cache it).
        #[arg(long, default_value_t = 3600)]
        min_published: i64,
        /// Promote the waiting next key now, whatever its age.
        #[arg(long)]
        now: bool,
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
        /// Put the consumer in this silo (tenant): consumers sharing a silo
        /// share contexts, resources and users. Default: a silo of its own.
        #[arg(long)]
        silo: Option<String>,
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
        Command::Serve {
            config,
            bind,
            metrics_bind,
        } => block_on(run_serve(config, bind, metrics_bind)),
        Command::CheckConfig { file } => return run_check_config(file.as_deref(), cli.log_format),
        Command::Platform {
            config,
            bind,
            keys,
            storage,
            metrics_bind,
        } => block_on(lti_app::devplatform::run_platform_with(
            config,
            bind,
            keys,
            lti_app::devplatform::PlatformSharing {
                storage_url: storage,
                metrics_bind,
            },
        )),
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
        Command::Platforms { config, command } => block_on(run_platforms(config, command)),
        Command::Keys { config, command } => block_on(run_keys(config, command)),
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

/// The configuration file (or the embedded default) with the environment
/// overrides of `lti_app::ENV_SETTINGS` applied.
fn load_config(path: Option<&PathBuf>) -> Result<Config, AppError> {
    Config::load_with_env(path.map(PathBuf::as_path), &|name| std::env::var(name).ok())
        .map_err(AppError::Config)
}

async fn run_serve(
    config: Option<PathBuf>,
    bind: Option<String>,
    metrics_bind: Option<String>,
) -> Result<(), AppError> {
    let embedded = config.is_none();
    let mut config = load_config(config.as_ref())?;
    if let Some(bind) = bind {
        config.server.bind = bind;
    }
    if let Some(metrics_bind) = metrics_bind {
        config.metrics.bind = Some(metrics_bind);
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
    if let Some(m) = app.metrics_bind {
        println!("Metrics: http://{m}/metrics");
    }
    println!("{}", app.urls);
    if embedded {
        println!(
            "No configuration file given: using the embedded default (storage {}, keys in {}).",
            config.storage.url,
            config.keys.dir.display()
        );
        println!(
            "After registering, add the platform with `lti platforms add` (running instances see it at the next launch), or under [[platforms]] in a config file (see `lti check-config`); or turn on [dynamic_registration] to register in one step."
        );
    }
    lti_app::run(app, listener, lti_app::shutdown_signal()).await
}

fn run_check_config(file: Option<&std::path::Path>, log_format: LogFormat) -> ExitCode {
    let name = file.map_or_else(
        || "embedded default".to_owned(),
        |f| f.display().to_string(),
    );
    match Config::load_with_env(file, &|name| std::env::var(name).ok()) {
        Ok(config) => {
            println!(
                "{name}: OK ({} platform(s), {} consumer(s))",
                config.platforms.len(),
                config.consumers.len()
            );
            println!("Effective settings:");
            for (path, value, origin) in config.effective_settings() {
                println!("  {path:<32} = {value:<40} ({origin})");
            }
            let log_origin = if std::env::var_os("LTI_LOG_FORMAT").is_some() {
                "env LTI_LOG_FORMAT"
            } else {
                "default or --log-format"
            };
            let log = match log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            };
            println!("  {:<32} = {log:<40} ({log_origin})", "log_format");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            eprintln!("{name}: {} problem(s)", problems.len());
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
    let cipher = lti_registry::SecretCipher::aes256gcm(
        lti_app::resolve_app_secret(&config).await?.app_key()?,
        vec![],
    )?;
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
        ConsumersCommand::Add {
            name,
            key,
            silo,
            config,
        } => {
            let store = open_configured_store(config.as_ref()).await?;
            let added =
                lti_app::add_consumer(&store, &name, key.as_deref(), silo.as_deref(), unix_now())
                    .await?;
            println!("Added consumer {:?}", added.name);
            println!("  Consumer key    : {}", added.key);
            println!("  Shared secret   : {}", added.secret.expose());
            if let Some(silo) = &silo {
                println!("  Silo            : {silo}");
            }
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
                let silo = store.provider.silo_of(&c.key).await?;
                let silo = silo.map_or_else(|| "-".to_owned(), |s| s.0);
                println!("{}\t{}\tinstance {guid}\tsilo {silo}", c.key, c.name);
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

/// Unix seconds now.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// One line per deployment status: `active: a, b; pending: c`.
fn deployments_line(registration: &lti_registry::PlatformRegistration) -> String {
    let mut parts = Vec::new();
    for status in [
        lti_registry::DeploymentStatus::Active,
        lti_registry::DeploymentStatus::Pending,
        lti_registry::DeploymentStatus::Inactive,
    ] {
        let ids: Vec<&str> = registration
            .deployments
            .iter()
            .filter(|d| d.status == status)
            .map(|d| d.deployment_id.as_str())
            .collect();
        if !ids.is_empty() {
            parts.push(format!("{status}: {}", ids.join(", ")));
        }
    }
    if parts.is_empty() {
        "no deployments".to_owned()
    } else {
        parts.join("; ")
    }
}

async fn run_platforms(config: Option<PathBuf>, command: PlatformsCommand) -> Result<(), AppError> {
    use lti_app::admin;
    let store = open_configured_store(config.as_ref()).await?;
    match command {
        PlatformsCommand::List => {
            let all = admin::list_platforms(&store).await?;
            if all.is_empty() {
                println!("No platforms registered.");
            }
            for r in all {
                let status = if r.status.is_active() {
                    String::new()
                } else {
                    format!("\tregistration {}", r.status)
                };
                println!(
                    "{}\t{}\t{}{status}",
                    r.issuer,
                    r.client_id,
                    deployments_line(&r)
                );
            }
        }
        PlatformsCommand::Show { issuer, client_id } => {
            let r = admin::find_platform(&store, &issuer, client_id.as_deref()).await?;
            println!("Issuer                 : {}", r.issuer);
            println!("Client id              : {}", r.client_id);
            println!("Status                 : {}", r.status);
            println!("Auth login URL         : {}", r.auth_login_url);
            println!("Token URL              : {}", r.auth_token_url);
            if let Some(aud) = &r.token_audience {
                println!("Token audience         : {aud}");
            }
            match &r.key_source {
                lti_registry::KeySource::JwksUrl { url } => {
                    println!("JWKS URL               : {url}");
                }
                other => println!("Keys                   : {other:?}"),
            }
            println!("Profile                : {}", r.quirks);
            println!("Unknown deployments    : {:?}", r.unknown_deployment_policy);
            println!("Deployments            : {}", deployments_line(&r));
            for (k, v) in &r.metadata {
                println!("  {k:<21}: {v}");
            }
        }
        PlatformsCommand::Add {
            issuer,
            client_id,
            auth_login_url,
            auth_token_url,
            jwks_url,
            deployment_ids,
            profile,
            replace,
        } => {
            let entry = lti_app::PlatformConfig {
                issuer,
                client_id,
                auth_login_url,
                auth_token_url,
                jwks_url,
                deployment_ids,
                profile,
            };
            let r = admin::add_platform(&store, &entry, replace).await?;
            println!(
                "Registered {} (client id {}); {}",
                r.issuer,
                r.client_id,
                deployments_line(&r)
            );
        }
        PlatformsCommand::Import {
            file,
            no_deployments,
            replace,
        } => {
            let summary =
                admin::import_platform_file(&store, &file, no_deployments, replace).await?;
            println!("Read {}: {}", file.display(), summary.format.name());
            for (verb, list) in [
                ("Registered", &summary.inserted),
                ("Replaced", &summary.updated),
            ] {
                for r in list {
                    println!(
                        "{verb} {} (client id {}); {}",
                        r.issuer,
                        r.client_id,
                        deployments_line(r)
                    );
                    if r.deployments.is_empty() {
                        println!(
                            "  no deployment ids: {}",
                            match no_deployments {
                                lti_app::UnknownDeploymentsMode::Pending =>
                                    "each deployment is recorded as pending; approve it with `lti platforms deployments ISSUER CLIENT_ID approve ID`",
                                lti_app::UnknownDeploymentsMode::Accept =>
                                    "every deployment this platform signs for is accepted (--no-deployments accept)",
                                lti_app::UnknownDeploymentsMode::AcceptFirst =>
                                    "the first deployment launching is accepted and recorded; later ones are recorded as pending",
                                lti_app::UnknownDeploymentsMode::Reject =>
                                    "launches are refused until a deployment is added",
                            }
                        );
                    }
                }
            }
            for note in &summary.notes {
                println!("Note: {note}");
            }
        }
        PlatformsCommand::Approve { issuer, client_id } => {
            let r = admin::approve_platform(&store, &issuer, &client_id).await?;
            println!(
                "Approved {} (client id {}): launches are accepted; {}",
                r.issuer,
                r.client_id,
                deployments_line(&r)
            );
        }
        PlatformsCommand::Remove { issuer, client_id } => {
            admin::remove_platform(&store, &issuer, &client_id).await?;
            println!("Removed {issuer} (client id {client_id})");
        }
        PlatformsCommand::Deployments {
            issuer,
            client_id,
            action,
            deployment_id,
        } => {
            let change = match action {
                DeploymentAction::Add => admin::DeploymentChange::Add,
                DeploymentAction::Approve => admin::DeploymentChange::Approve,
                DeploymentAction::Disable => admin::DeploymentChange::Disable,
                DeploymentAction::Remove => admin::DeploymentChange::Remove,
            };
            let r = admin::change_deployment(
                &store,
                &issuer,
                &client_id,
                &deployment_id,
                change,
                unix_now(),
            )
            .await?;
            println!("{issuer} (client id {client_id}): {}", deployments_line(&r));
        }
    }
    Ok(())
}

async fn run_keys(config: Option<PathBuf>, command: KeysCommand) -> Result<(), AppError> {
    use lti_app::admin;
    let store = open_configured_store(config.as_ref()).await?;
    match command {
        KeysCommand::List => {
            let keys = admin::list_keys(&store).await?;
            if keys.is_empty() {
                println!("No keys (lti serve installs its key on first start).");
            }
            for k in keys {
                let retired = k
                    .retired_at
                    .map(|t| format!("\tretired {t}"))
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\tcreated {}{retired}",
                    k.kid, k.status, k.alg, k.created_at
                );
            }
        }
        KeysCommand::Rotate {
            bits,
            min_published,
            now,
        } => {
            let overlap =
                i64::try_from(lti_tool::DEFAULT_RETIRED_KEY_OVERLAP.as_secs()).unwrap_or(i64::MAX);
            match admin::rotate_key(&store, unix_now(), bits, min_published, overlap, now).await? {
                admin::Rotation::Published { kid } => {
                    println!(
                        "Published the next key {kid}: every instance's JWKS lists it now; it does not sign yet."
                    );
                    println!(
                        "Run `lti keys rotate` again in {min_published} s or later to make it the signing key."
                    );
                }
                admin::Rotation::Promoted { active, retired } => {
                    println!("The key {active} signs from now on.");
                    if let Some(old) = retired {
                        println!(
                            "The previous key {old} is retired and stays in the JWKS for {overlap} s."
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
