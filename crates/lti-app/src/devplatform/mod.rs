//! `lti platform` and `lti demo`: a minimal LMS for development, built on
//! `lti-platform`.
//!
//! One course (`course-101`) with an instructor and three learners, the tools
//! of the configuration, "launch as …" buttons per user, a deep-linking launch
//! for the instructor that adds the returned items to the course, a grade book
//! page showing the scores tools post through AGS, and the roster served
//! through NRPS. Everything lives in memory and is lost on exit.
//!
//! The "current user" is a cookie: launching as someone signs them in, and the
//! authorization endpoint answers only for that user (`login_hint` must match).
//!
//! A launch page frames the tool and answers its postMessage Platform Storage
//! messages (`lti_storage_target=_parent`); `/launch?…&storage=forwarding`
//! answers them from a hidden frame named `post_message_forwarding` instead, as
//! Canvas does, and `/launch?…&storage=none` offers no storage at all (an LMS
//! without it: a framed launch rests on the tool's cookie alone).

mod config;
mod pages;
mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lti_http::{HttpClient, HyperClient, JwksCache};
use lti_jose::SigningKey;
use lti_message::nrps::MembershipContext;
use lti_platform::services::{MemoryGradeBook, MemoryRoster, ResourceLinks, RosterMember};
use lti_platform::{
    DynamicRegistration, MemoryToolRegistry, Platform, PlatformConfig, PlatformKeys,
    PlatformSecret, PlatformUser, Registered, RegistrationConfig, ToolKeys, ToolRegistration,
};
use tokio::net::TcpListener;

pub use config::{
    DEFAULT_DEPLOYMENT_ID, DEFAULT_PLATFORM_BIND, DevLti11ToolConfig, DevPlatformConfig,
    DevPrivacyConfig, DevServerConfig, DevToolConfig,
};
pub use routes::router;

use crate::config::{Problem, StorageConfig};
use crate::error::AppError;

/// The course every dev platform has.
pub const COURSE_ID: &str = "course-101";
/// The course's label.
pub const COURSE_LABEL: &str = "LTI 101";
/// The course's title.
pub const COURSE_TITLE: &str = "Introduction to LTI";
/// The name of the cookie holding the current user's id.
pub const USER_COOKIE: &str = "lti_dev_platform_user";
/// The LTI 1.1 consumer key `lti demo` registers with the tool.
pub const DEMO_CONSUMER_KEY: &str = "lti-demo-consumer";
/// The default bind address of the tool in `lti demo`.
pub const DEFAULT_DEMO_TOOL_BIND: &str = "127.0.0.1:3000";

const ROLE_INSTRUCTOR: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor";
const ROLE_LEARNER: &str = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner";

/// The service scopes granted to every tool of the configuration file (and
/// offered to tools registering dynamically): the AGS and NRPS scopes the
/// platform implements.
pub const GRANTED_SCOPES: &[&str] = lti_platform::SERVICE_SCOPES;

/// A member of the course.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CourseUser {
    /// The platform user id.
    pub id: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Whether the user teaches the course (otherwise a learner).
    pub instructor: bool,
}

impl CourseUser {
    fn new(id: &str, given: &str, family: &str, instructor: bool) -> Self {
        Self {
            id: id.to_owned(),
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            instructor,
        }
    }

    /// "Given Family".
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
    }

    /// The course role URI.
    pub fn role(&self) -> &'static str {
        if self.instructor {
            ROLE_INSTRUCTOR
        } else {
            ROLE_LEARNER
        }
    }

    /// The `lti-platform` user.
    pub fn platform_user(&self) -> PlatformUser {
        PlatformUser::new(self.id.clone())
            .with_name(self.given_name.clone(), self.family_name.clone())
            .with_email(format!("{}@example.edu", self.id))
            .with_username(self.id.clone())
            .with_sourced_id(self.sourced_id())
    }

    /// The (made-up) SIS id.
    pub fn sourced_id(&self) -> String {
        format!("SIS-{}", self.id)
    }
}

/// The course's members: one instructor, three learners.
pub fn course_users() -> Vec<CourseUser> {
    vec![
        CourseUser::new("ada", "Ada", "Lovelace", true),
        CourseUser::new("alan", "Alan", "Turing", false),
        CourseUser::new("grace", "Grace", "Hopper", false),
        CourseUser::new("edsger", "Edsger", "Dijkstra", false),
    ]
}

/// What the course page offers to launch.
#[derive(Debug, Clone, PartialEq)]
pub enum CourseItem {
    /// An LTI resource link.
    ResourceLink {
        /// The resource link id.
        id: String,
        /// The tool's client id.
        client_id: String,
        /// The title.
        title: String,
        /// Where the tool lands (`None`: the registration's target link URI).
        url: Option<String>,
        /// Custom parameters from deep linking.
        custom: std::collections::BTreeMap<String, String>,
        /// The grade book line item bound to the link.
        line_item_id: Option<String>,
    },
    /// An LTI 1.1 link, launched with an OAuth 1.0a-signed form.
    Lti11Link {
        /// The resource link id.
        id: String,
        /// Index into the platform's LTI 1.1 tools.
        tool: usize,
        /// The title.
        title: String,
    },
    /// A plain link returned by deep linking.
    Link {
        /// The title.
        title: String,
        /// The URL.
        url: String,
    },
    /// An HTML fragment returned by deep linking (shown as text, never rendered).
    Html {
        /// The title.
        title: String,
        /// The fragment.
        html: String,
    },
}

/// The course's resource links, for the platform's line-item checks: a tool may
/// bind a line item (its `resourceLinkId`) only to one of its own links in the
/// course, as Canvas requires. Other contexts are not the dev platform's.
struct CourseLinks(Arc<RwLock<Vec<CourseItem>>>);

#[async_trait::async_trait]
impl ResourceLinks for CourseLinks {
    async fn is_link_of(
        &self,
        client_id: &str,
        context_id: &str,
        resource_link_id: &str,
    ) -> lti_platform::Result<Option<bool>> {
        if context_id != COURSE_ID {
            return Ok(None);
        }
        let items = match self.0.read() {
            Ok(items) => items,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok(Some(items.iter().any(|item| {
            matches!(
                item,
                CourseItem::ResourceLink { id, client_id: owner, .. }
                    if id == resource_link_id && owner == client_id
            )
        })))
    }
}

/// A registered tool as the course page shows it.
#[derive(Debug, Clone)]
pub struct CourseTool {
    /// The registration.
    pub registration: ToolRegistration,
    /// The deployment launches use.
    pub deployment_id: String,
}

/// An LTI 1.1 tool: where to launch and what to sign with.
#[derive(Clone)]
pub(crate) struct Lti11Tool {
    pub(crate) launch_url: String,
    pub(crate) credentials: lti11::Credentials,
}

pub(crate) struct Inner {
    pub(crate) platform: Platform,
    pub(crate) lti11_tools: RwLock<Vec<Lti11Tool>>,
    pub(crate) lti11_users: lti11::UserIdPolicy,
    pub(crate) grade_book: Arc<MemoryGradeBook>,
    pub(crate) users: Vec<CourseUser>,
    pub(crate) tools: RwLock<Vec<CourseTool>>,
    /// Dynamic Registration: the configuration document, tokens, the
    /// registration endpoint (adding to the platform's registry).
    pub(crate) registration: DynamicRegistration,
    /// Keys the admin pages' CSRF tokens (HMAC of the admin cookie).
    pub(crate) admin_key: ring::hmac::Key,
    /// Shared with the platform's line-item checks ([`CourseLinks`]).
    pub(crate) items: Arc<RwLock<Vec<CourseItem>>>,
    pub(crate) next_link: AtomicU64,
    pub(crate) base_url: String,
}

/// The dev platform's shared state (cheap to clone).
#[derive(Clone)]
pub struct DevPlatform {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for DevPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevPlatform")
            .field("base_url", &self.inner.base_url)
            .field("tools", &self.tools().len())
            .finish_non_exhaustive()
    }
}

fn config_problem(path: &str, message: String) -> AppError {
    AppError::Config(vec![Problem {
        path: path.to_owned(),
        message,
    }])
}

impl DevPlatform {
    /// A platform whose public base URL (and issuer) is `base_url` (no trailing
    /// slash needed), with a fresh RSA key, the course, its roster and one
    /// "launch" link per tool.
    ///
    /// # Errors
    /// [`AppError::Config`] for an unusable URL or tool registration,
    /// [`AppError::Http`] when the HTTP client for tool JWKS cannot be built.
    pub fn new(base_url: &str, tools: &[DevToolConfig]) -> Result<Self, AppError> {
        Self::with_signing_key(base_url, tools, generate_platform_key()?)
    }

    /// Adds LTI 1.1 tools, each with a "launch" link on the course page.
    ///
    /// # Errors
    /// None today (kept a `Result` for callers that check configuration).
    pub fn with_lti11_tools(self, tools: &[DevLti11ToolConfig]) -> Result<Self, AppError> {
        for t in tools {
            self.add_lti11_tool(t);
        }
        Ok(self)
    }

    /// Adds one LTI 1.1 tool with a "launch" link on the course page (also
    /// while serving: `lti demo` adds its LTI 1.1 link after registering its
    /// LTI 1.3 tool dynamically).
    pub fn add_lti11_tool(&self, t: &DevLti11ToolConfig) {
        let tool = Lti11Tool {
            launch_url: t.launch_url.clone(),
            credentials: lti11::Credentials::new(t.key.clone(), t.secret.clone()),
        };
        let index = {
            let mut tools = match self.inner.lti11_tools.write() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            tools.push(tool);
            tools.len() - 1
        };
        let id = self.new_link_id();
        self.push_item(CourseItem::Lti11Link {
            id,
            tool: index,
            title: format!("{} (LTI 1.1)", t.name),
        });
    }

    /// LTI 1.1 tool `index`.
    pub(crate) fn lti11_tool(&self, index: usize) -> Option<Lti11Tool> {
        match self.inner.lti11_tools.read() {
            Ok(g) => g.get(index).cloned(),
            Err(p) => p.into_inner().get(index).cloned(),
        }
    }

    /// As [`DevPlatform::new`], with the given platform signing key.
    ///
    /// # Errors
    /// As [`DevPlatform::new`].
    pub fn with_signing_key(
        base_url: &str,
        tools: &[DevToolConfig],
        key: SigningKey,
    ) -> Result<Self, AppError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let keys = Arc::new(PlatformKeys::new(key));
        let secret = PlatformSecret::generate()
            .map_err(|e| config_problem("", format!("expected a platform secret, found: {e}")))?;
        let registry = Arc::new(MemoryToolRegistry::new());
        let mut course_tools = Vec::new();
        let mut items = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            let mut reg = ToolRegistration::new(
                t.client_id.clone(),
                t.login_url.clone(),
                t.target_link_uri.clone(),
                ToolKeys::JwksUrl(t.jwks_url.clone()),
            )
            .with_name(t.name.clone())
            .with_redirect_uris(t.redirect_uris.iter().cloned())
            .with_deployment(t.deployment_id.clone())
            .with_custom("course_label", "$Context.label")
            .with_custom("username", "$User.username")
            .with_privacy(t.privacy.share_name, t.privacy.share_email)
            .with_picture_shared(t.privacy.share_picture)
            .with_username_shared(t.privacy.share_username)
            .with_sourcedid_shared(t.privacy.share_sourcedid);
            for s in GRANTED_SCOPES {
                reg = reg.with_scope(*s);
            }
            registry
                .register(reg.clone())
                .map_err(|e| config_problem(&format!("tools[{i}]"), e.to_string()))?;
            items.push(CourseItem::ResourceLink {
                id: format!("link-{}", i + 1),
                client_id: t.client_id.clone(),
                title: t.name.clone(),
                url: None,
                custom: Default::default(),
                line_item_id: None,
            });
            course_tools.push(CourseTool {
                registration: reg,
                deployment_id: t.deployment_id.clone(),
            });
        }
        // A development platform: its tools (and their JWKS) are on loopback.
        let http: Arc<dyn HttpClient> =
            Arc::new(HyperClient::builder().allow_private_addresses().build()?);
        let grade_book = Arc::new(MemoryGradeBook::new());
        let roster = Arc::new(MemoryRoster::new());
        roster.add_context(MembershipContext {
            id: COURSE_ID.to_owned(),
            label: Some(COURSE_LABEL.to_owned()),
            title: Some(COURSE_TITLE.to_owned()),
        });
        let users = course_users();
        for u in &users {
            roster.upsert_member(
                COURSE_ID,
                RosterMember::new(u.id.clone(), [u.role()])
                    .with_name(u.given_name.clone(), u.family_name.clone())
                    .with_email(format!("{}@example.edu", u.id))
                    .with_sourced_id(u.sourced_id()),
            );
        }
        let config = PlatformConfig::new(base.clone()).with_tool_platform(
            lti_message::claims::ToolPlatformClaim {
                guid: Some("lti-rs-dev-platform".to_owned()),
                name: Some("lti-rs dev platform".to_owned()),
                product_family_code: Some("lti-rs".to_owned()),
                ..Default::default()
            },
        );
        let registration = DynamicRegistration::new(
            &config,
            RegistrationConfig::new(&config, "lti-rs", env!("CARGO_PKG_VERSION")),
            registry.clone(),
        )
        .map_err(|e| config_problem("platform.public_url", e.to_string()))?;
        let platform = Platform::new(
            config,
            keys,
            secret,
            registry,
            Arc::new(JwksCache::new(http)),
        )
        .map_err(|e| config_problem("platform.public_url", e.to_string()))?;
        let next = items.len() as u64 + 1;
        let items = Arc::new(RwLock::new(items));
        let platform = platform
            .with_grade_book(grade_book.clone())
            .with_roster(roster)
            .with_resource_links(Arc::new(CourseLinks(Arc::clone(&items))));
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).map_err(
            |_| config_problem("", "expected random bytes, found an RNG failure".to_owned()),
        )?;
        let mut admin_seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut admin_seed).map_err(
            |_| config_problem("", "expected random bytes, found an RNG failure".to_owned()),
        )?;
        let admin_key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &admin_seed);
        let pseudonyms = lti11::PseudonymKey::new(&seed).map_err(|e| {
            config_problem("", format!("expected an LTI 1.1 pseudonym key, found: {e}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                platform,
                lti11_tools: RwLock::new(Vec::new()),
                lti11_users: lti11::UserIdPolicy::Pseudonymous(pseudonyms),
                grade_book,
                users,
                tools: RwLock::new(course_tools),
                registration,
                admin_key,
                items,
                next_link: AtomicU64::new(next),
                base_url: base,
            }),
        })
    }

    /// Keeps the platform's replay store (client-assertion `jti`s, deep-linking
    /// nonces) in `store.nonces` and its context grants in
    /// `store.shared_values` ([`lti_platform::services::StoredContextGrants`]),
    /// so several instances sharing the store agree: a `jti` used on one is
    /// refused on the others, and a launch on one grants the services on all.
    ///
    /// # Errors
    /// [`AppError::Config`] when the platform is already in use (cloned).
    pub fn with_shared_state(self, store: &lti_registry::Store) -> Result<Self, AppError> {
        let inner = Arc::try_unwrap(self.inner).map_err(|_| {
            config_problem(
                "",
                "expected a dev platform not yet in use, found one already shared".to_owned(),
            )
        })?;
        let platform = inner
            .platform
            .with_replay_store(store.nonces.clone())
            .with_context_access(Arc::new(lti_platform::services::StoredContextGrants::new(
                store.shared_values.clone(),
            )));
        Ok(Self {
            inner: Arc::new(Inner { platform, ..inner }),
        })
    }

    /// The course page URL (what to open in a browser).
    pub fn course_url(&self) -> String {
        format!("{}/", self.inner.base_url)
    }

    /// The issuer.
    pub fn issuer(&self) -> &str {
        &self.inner.base_url
    }

    /// The authorization endpoint URL.
    pub fn auth_url(&self) -> String {
        format!("{}/auth", self.inner.base_url)
    }

    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        self.inner.platform.config().token_endpoint.clone()
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.inner.base_url)
    }

    /// The course's items (links) as the course page shows them.
    pub fn items(&self) -> Vec<CourseItem> {
        match self.inner.items.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn push_item(&self, item: CourseItem) {
        match self.inner.items.write() {
            Ok(mut g) => g.push(item),
            Err(p) => p.into_inner().push(item),
        }
    }

    pub(crate) fn new_link_id(&self) -> String {
        format!(
            "link-{}",
            self.inner.next_link.fetch_add(1, Ordering::Relaxed)
        )
    }

    pub(crate) fn user(&self, id: &str) -> Option<&CourseUser> {
        self.inner.users.iter().find(|u| u.id == id)
    }

    pub(crate) fn tool(&self, client_id: &str) -> Option<CourseTool> {
        self.tools()
            .into_iter()
            .find(|t| t.registration.client_id == client_id)
    }

    /// The registered LTI 1.3 tools, in registration order.
    pub fn tools(&self) -> Vec<CourseTool> {
        match self.inner.tools.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The URL of the platform's OpenID configuration (Dynamic Registration).
    pub fn openid_configuration_url(&self) -> String {
        self.inner
            .registration
            .config()
            .openid_configuration_url
            .clone()
    }

    /// The registration endpoint URL (Dynamic Registration).
    pub fn registration_endpoint_url(&self) -> String {
        self.inner
            .registration
            .config()
            .registration_endpoint
            .clone()
    }

    /// The admin page that registers tools dynamically.
    pub fn admin_tools_url(&self) -> String {
        format!("{}/admin/tools", self.inner.base_url)
    }

    /// Starts a dynamic registration in one step: mints a one-time token
    /// (one hour) for `admin` and returns the tool's `registration_url` with
    /// `openid_configuration` and `registration_token` added — the URL to open
    /// in a browser (or fetch, for a tool that registers on GET). When the
    /// tool completes the flow it appears in the course.
    ///
    /// # Errors
    /// [`lti_platform::PlatformError`] `invalid_parameter` for a URL that is not
    /// absolute http(s).
    pub async fn registration_initiation_url(
        &self,
        registration_url: &str,
        admin: &str,
    ) -> Result<String, lti_platform::PlatformError> {
        self.inner
            .registration
            .initiation_url(registration_url, admin)
            .await
    }

    /// Sets how long Dynamic Registration tokens stay usable (default one
    /// hour; `[platform] registration_token_lifetime_secs`).
    ///
    /// # Errors
    /// [`AppError::Config`] for zero, or once the platform is shared (serving).
    pub fn with_registration_token_lifetime(mut self, secs: u64) -> Result<Self, AppError> {
        let path = "platform.registration_token_lifetime_secs";
        let inner = Arc::get_mut(&mut self.inner).ok_or_else(|| {
            config_problem(
                path,
                "expected to configure the platform before serving, found a shared platform"
                    .to_owned(),
            )
        })?;
        inner
            .registration
            .set_token_lifetime_secs(secs)
            .map_err(|e| config_problem(path, e.to_string()))?;
        Ok(self)
    }

    /// Adds a tool the registration endpoint stored to the course: one
    /// resource link with launch buttons, and the deep-linking buttons.
    pub(crate) fn add_registered_tool(&self, registered: &Registered) {
        let tool = CourseTool {
            registration: registered.tool.clone(),
            deployment_id: registered.deployment_id.clone(),
        };
        let title = if tool.registration.name.is_empty() {
            tool.registration.client_id.clone()
        } else {
            tool.registration.name.clone()
        };
        match self.inner.tools.write() {
            Ok(mut g) => g.push(tool.clone()),
            Err(p) => p.into_inner().push(tool.clone()),
        }
        let id = self.new_link_id();
        self.push_item(CourseItem::ResourceLink {
            id,
            client_id: tool.registration.client_id,
            title,
            url: None,
            custom: Default::default(),
            line_item_id: None,
        });
    }
}

/// A fresh RSA 2048 platform key (seconds of CPU in a debug build).
fn generate_platform_key() -> Result<SigningKey, AppError> {
    SigningKey::generate_rsa(2048)
        .map(|(key, _pem)| key)
        .map_err(|e| config_problem("", format!("expected a platform signing key, found: {e}")))
}

fn default_public_url(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() {
        format!("http://localhost:{}", addr.port())
    } else {
        format!("http://{addr}")
    }
}

async fn bind(what: &'static str, addr: &str) -> Result<TcpListener, AppError> {
    let parsed: SocketAddr = addr.parse().map_err(|_| {
        config_problem(
            what,
            format!("expected an IP address and port such as 127.0.0.1:4000, found {addr:?}"),
        )
    })?;
    TcpListener::bind(parsed)
        .await
        .map_err(|e| AppError::io("binding", addr.to_owned(), e))
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, AppError> {
    listener
        .local_addr()
        .map_err(|e| AppError::io("reading the address of", "listener", e))
}

/// What several `lti platform` instances share (see [`run_platform_with`]).
#[derive(Debug, Clone, Default)]
pub struct PlatformSharing {
    /// The store of the replay store and context grants (`postgres://…`,
    /// `redis://…`, …); `None`: in memory.
    pub storage_url: Option<String>,
    /// The address of the metrics listener; `None`: no metrics endpoint.
    pub metrics_bind: Option<String>,
}

/// `lti platform`: serves the dev platform of `config` (or an empty one) until
/// Ctrl-C. With `keys_dir`, the platform key is `keys_dir/platform.pem`
/// (generated there when missing); otherwise a fresh key each start.
///
/// # Errors
/// [`AppError::Config`] for a bad file or address, [`AppError::Io`] when the
/// port cannot be bound.
pub async fn run_platform(
    config: Option<PathBuf>,
    bind_override: Option<String>,
    keys_dir: Option<PathBuf>,
) -> Result<(), AppError> {
    run_platform_with(config, bind_override, keys_dir, PlatformSharing::default()).await
}

/// [`run_platform`] with the replay store and context grants in a shared
/// store and `GET /metrics` on its own address, per `sharing`.
///
/// # Errors
/// As [`run_platform`], plus [`AppError::Store`] when the store cannot be opened.
pub async fn run_platform_with(
    config: Option<PathBuf>,
    bind_override: Option<String>,
    keys_dir: Option<PathBuf>,
    sharing: PlatformSharing,
) -> Result<(), AppError> {
    let metrics_addr = match &sharing.metrics_bind {
        Some(b) => Some(b.parse::<SocketAddr>().map_err(|_| {
            config_problem(
                "metrics bind address",
                format!("expected an IP address and port such as 127.0.0.1:9101, found {b:?}"),
            )
        })?),
        None => None,
    };
    let mut config = match &config {
        Some(p) => DevPlatformConfig::load(p).map_err(AppError::Config)?,
        None => DevPlatformConfig::default(),
    };
    if let Some(b) = bind_override {
        config.platform.bind = b;
    }
    let listener = bind("platform.bind", &config.platform.bind).await?;
    let addr = local_addr(&listener)?;
    let base = config
        .platform
        .public_url
        .clone()
        .unwrap_or_else(|| default_public_url(addr));
    let key = match &keys_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| AppError::io("creating directory", dir, e))?;
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || load_or_generate_platform_key(&dir))
                .await
                .map_err(|e| {
                    config_problem("", format!("expected a platform signing key, found: {e}"))
                })??
        }
        None => tokio::task::spawn_blocking(generate_platform_key)
            .await
            .map_err(|e| {
                config_problem("", format!("expected a platform signing key, found: {e}"))
            })??,
    };
    let mut dev = DevPlatform::with_signing_key(&base, &config.tools, key)?
        .with_lti11_tools(&config.lti11_tools)?
        .with_registration_token_lifetime(config.platform.registration_token_lifetime_secs)?;
    if let Some(url) = &sharing.storage_url {
        // Only the replay store and the grants live there: no secret is
        // stored, so the cipher's key is a throwaway one.
        let cipher = lti_registry::SecretCipher::aes256gcm(
            lti_registry::AppKey::generate("platform")?,
            vec![],
        )?;
        let store = lti_store::open(url, &lti_store::OpenOptions::new(cipher)).await?;
        dev = dev.with_shared_state(&store)?;
    }
    let metrics = crate::Metrics::new();
    println!("lti platform is listening on http://{addr}");
    print_registration(&dev);
    if config.tools.is_empty() && config.lti11_tools.is_empty() {
        println!(
            "No tools registered: register one at {} (LTI Dynamic Registration), or add [[tools]] entries to a configuration file and restart with --config FILE.",
            dev.admin_tools_url()
        );
    }
    println!("Open {}", dev.course_url());
    let limits = crate::ServerLimits::default();
    let router = router(dev).layer(axum::middleware::from_fn_with_state(
        metrics.clone(),
        crate::metrics::track_platform,
    ));
    match metrics_addr {
        None => crate::serve_http(listener, router, limits, crate::shutdown_signal()).await,
        Some(m) => {
            let metrics_listener = tokio::net::TcpListener::bind(m)
                .await
                .map_err(|e| AppError::io("binding", m.to_string(), e))?;
            println!("Metrics: http://{m}/metrics");
            crate::serve_with_metrics(
                listener,
                router,
                limits,
                (metrics, metrics_listener),
                crate::shutdown_signal(),
            )
            .await
        }
    }
}

fn print_registration(dev: &DevPlatform) {
    println!("Platform details for tool configuration:");
    println!("  Issuer                    : {}", dev.issuer());
    println!("  Authorization endpoint    : {}", dev.auth_url());
    println!("  Token endpoint            : {}", dev.token_url());
    println!("  Public keyset (JWKS) URL  : {}", dev.jwks_url());
    println!(
        "  OpenID configuration      : {}",
        dev.openid_configuration_url()
    );
    println!(
        "Register a tool dynamically (LTI Dynamic Registration): {}",
        dev.admin_tools_url()
    );
}

/// Where `lti demo` listens.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The tool's bind address (default `127.0.0.1:3000`; port 0 picks one).
    pub tool_bind: String,
    /// The platform's bind address (default `127.0.0.1:4000`; port 0 picks one).
    pub platform_bind: String,
    /// Where to keep the keys (the tool's key directory, plus `platform.pem`):
    /// reused when present, so restarts skip key generation. `None`: fresh keys
    /// in a temporary directory removed on exit.
    pub keys_dir: Option<PathBuf>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            tool_bind: DEFAULT_DEMO_TOOL_BIND.to_owned(),
            platform_bind: DEFAULT_PLATFORM_BIND.to_owned(),
            keys_dir: None,
        }
    }
}

/// The name of the platform key file in `lti demo --keys DIR`.
pub const PLATFORM_KEY_FILE: &str = "platform.pem";

/// The demo's key directory; a temporary one is removed when dropped.
struct KeysDir {
    path: PathBuf,
    temporary: bool,
}

impl Drop for KeysDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The platform key in `dir/platform.pem`, generated and written (mode 0600)
/// when missing.
fn load_or_generate_platform_key(dir: &std::path::Path) -> Result<SigningKey, AppError> {
    let path = dir.join(PLATFORM_KEY_FILE);
    if path.exists() {
        let pem = std::fs::read_to_string(&path).map_err(|e| AppError::io("reading", &path, e))?;
        return SigningKey::from_pem(&pem, lti_jose::Algorithm::RS256)
            .map_err(|source| AppError::Key { path, source });
    }
    let (key, pem) = SigningKey::generate_rsa(2048).map_err(|source| AppError::Key {
        path: path.clone(),
        source,
    })?;
    crate::keys::write_private(&path, pem.as_bytes())?;
    Ok(key)
}

fn temp_keys_dir() -> Result<KeysDir, AppError> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("lti-demo-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| AppError::io("creating directory", &dir, e))?;
    Ok(KeysDir {
        path: dir,
        temporary: true,
    })
}

/// `lti demo`: the dev platform on `localhost` and the tool on `127.0.0.1`
/// (so the tool frame is cross-site), in-memory stores, keys generated on
/// start. Once both listen, the tool registers with the platform through LTI
/// Dynamic Registration (the platform mints a registration URL, the tool's
/// `GET /lti/register` fetches the platform's configuration and posts its
/// registration); the LTI 1.1 consumer is configured on both sides. Prints
/// the course URL and runs until `shutdown` completes.
///
/// # Errors
/// [`AppError::Config`] for bad addresses or a failed registration (the
/// servers are stopped), [`AppError::Io`] when a port cannot be bound, and
/// whatever preparing the tool fails with.
pub async fn run_demo(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let tool_listener = bind("tool bind address", &options.tool_bind).await?;
    let platform_listener = bind("platform bind address", &options.platform_bind).await?;
    let tool_addr = local_addr(&tool_listener)?;
    let platform_addr = local_addr(&platform_listener)?;
    let platform_base = format!("http://localhost:{}", platform_addr.port());
    let keys_dir = match &options.keys_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| AppError::io("creating directory", dir, e))?;
            KeysDir {
                path: dir.clone(),
                temporary: false,
            }
        }
        None => temp_keys_dir()?,
    };
    // Missing keys are generated on start: the platform's in parallel with the tool's.
    let platform_key = tokio::task::spawn_blocking({
        let dir = keys_dir.path.clone();
        move || load_or_generate_platform_key(&dir)
    });

    let mut tool_config = crate::Config {
        storage: StorageConfig {
            url: "memory://".to_owned(),
            nonce_url: None,
        },
        ..crate::Config::default()
    };
    tool_config.server.bind = tool_addr.to_string();
    tool_config.server.public_url = Some(format!("http://127.0.0.1:{}/", tool_addr.port()));
    tool_config.keys.dir = keys_dir.path.clone();
    // Both ends are on this machine: the tool may call the platform's services
    // and (LTI 1.1 outcomes) its origin on loopback.
    tool_config.egress = crate::EgressConfig {
        allowed_origins: vec![platform_base.clone()],
        allow_private_addresses: true,
    };
    // The tool learns about the platform through LTI Dynamic Registration
    // (below), accepting only this platform, active at once.
    tool_config.dynamic_registration = crate::DynamicRegistrationConfig {
        enabled: true,
        allowed_issuers: vec![platform_base.clone()],
        approval: crate::ApprovalMode::Auto,
        name: DEMO_TOOL_NAME.to_owned(),
        custom_parameters: [
            ("course_label".to_owned(), "$Context.label".to_owned()),
            ("username".to_owned(), "$User.username".to_owned()),
        ]
        .into_iter()
        .collect(),
        ..crate::DynamicRegistrationConfig::default()
    };
    let mut secret = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).map_err(
        |_| config_problem("", "expected random bytes, found an RNG failure".to_owned()),
    )?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    tool_config.consumers.push(crate::ConsumerConfig {
        key: DEMO_CONSUMER_KEY.to_owned(),
        secret: secret.clone(),
        name: Some("lti demo platform".to_owned()),
        silo: None,
    });
    let app = crate::prepare(&tool_config).await?;
    let register_url = app.urls.register.clone().ok_or_else(|| {
        registration_failed(
            "expected the tool's registration URL, found dynamic registration off".to_owned(),
        )
    })?;
    let platform_key = platform_key.await.map_err(|e| {
        config_problem("", format!("expected a platform signing key, found: {e}"))
    })??;
    let lti11_tool = DevLti11ToolConfig {
        name: DEMO_TOOL_NAME.to_owned(),
        launch_url: app.urls.lti11_launch.clone(),
        key: DEMO_CONSUMER_KEY.to_owned(),
        secret,
    };
    let dev = DevPlatform::with_signing_key(&platform_base, &[], platform_key)?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let tool_task = tokio::spawn(crate::run(app, tool_listener, stopped(stop_rx.clone())));
    let platform_task = tokio::spawn({
        let rx = stop_rx.clone();
        let router = router(dev.clone());
        async move {
            let limits = crate::ServerLimits::default();
            crate::serve_http(platform_listener, router, limits, stopped(rx)).await
        }
    });
    // Both servers run: the platform mints a registration URL and the tool's
    // `GET /lti/register` fetches the platform's configuration, posts its
    // registration and stores the answer, as for any platform.
    let registered = match register_demo_tool(&dev, &register_url).await {
        Ok(registered) => registered,
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = tool_task.await;
            let _ = platform_task.await;
            drop(keys_dir);
            return Err(e);
        }
    };
    dev.add_lti11_tool(&lti11_tool);
    println!(
        "lti demo: the tool registered with the platform through LTI Dynamic Registration (client id {}, deployment {})",
        registered.client_id, registered.deployment_id
    );
    println!(
        "lti demo: the tool listens on http://127.0.0.1:{} (health: /healthz)",
        tool_addr.port()
    );
    println!("lti demo: the platform listens on {platform_base} (health: /healthz)");
    println!(
        "Open {} in your browser (Ctrl-C stops the demo).",
        dev.course_url()
    );
    shutdown.await;
    let _ = stop_tx.send(true);
    let join = |r: Result<Result<(), AppError>, tokio::task::JoinError>| match r {
        Ok(inner) => inner,
        Err(e) => Err(AppError::io(
            "running",
            "demo server task",
            std::io::Error::other(e.to_string()),
        )),
    };
    let tool_result = join(tool_task.await);
    let platform_result = join(platform_task.await);
    drop(keys_dir);
    tool_result.and(platform_result)
}

/// The name the demo's tool registers under.
const DEMO_TOOL_NAME: &str = "lti-rs launch inspector";

/// What the tool's registration page answered (`Accept: application/json`).
struct DemoRegistration {
    client_id: String,
    deployment_id: String,
}

fn registration_failed(message: String) -> AppError {
    config_problem("dynamic_registration", message)
}

/// Registers the demo's tool with `dev` through LTI Dynamic Registration over
/// loopback HTTP: mints the initiation URL for the tool's `register_url` and
/// opens it as a browser would (asking for the JSON answer instead of the
/// page), then checks the platform lists the tool.
async fn register_demo_tool(
    dev: &DevPlatform,
    register_url: &str,
) -> Result<DemoRegistration, AppError> {
    let url = dev
        .registration_initiation_url(register_url, "lti-demo")
        .await
        .map_err(|e| registration_failed(format!("expected a registration URL, found: {e}")))?;
    let http = HyperClient::builder().allow_private_addresses().build()?;
    let req = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(bytes::Bytes::new())
        .map_err(|e| registration_failed(format!("expected a request, found: {e}")))?;
    let resp = http.send(req).await.map_err(|e| {
        registration_failed(format!("expected the tool's registration page, found: {e}"))
    })?;
    let answer: serde_json::Value = serde_json::from_slice(resp.body()).unwrap_or_default();
    if resp.status() != http::StatusCode::OK || answer["status"] != "active" {
        return Err(registration_failed(format!(
            "expected an active registration, found HTTP {} {}: {}",
            resp.status().as_u16(),
            answer["error"].as_str().unwrap_or("-"),
            answer["message"].as_str().unwrap_or("-"),
        )));
    }
    let client_id = answer["client_id"].as_str().unwrap_or_default().to_owned();
    let tool = dev.tool(&client_id).ok_or_else(|| {
        registration_failed(format!(
            "expected the platform to list the registered tool, found no client id {client_id:?}"
        ))
    })?;
    Ok(DemoRegistration {
        client_id,
        deployment_id: tool.deployment_id,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use lti_platform::LaunchSpec;

    use super::*;

    const PLATFORM_PEM: &str = include_str!("../../../../tests/fixtures/lti-platform/platform.pem");

    fn tool(client_id: &str, privacy: DevPrivacyConfig) -> DevToolConfig {
        DevToolConfig {
            name: client_id.to_owned(),
            client_id: client_id.to_owned(),
            login_url: "http://127.0.0.1:3000/lti/login".to_owned(),
            redirect_uris: vec!["http://127.0.0.1:3000/lti/launch".to_owned()],
            target_link_uri: "http://127.0.0.1:3000/lti/app".to_owned(),
            jwks_url: "http://127.0.0.1:3000/.well-known/jwks.json".to_owned(),
            deployment_id: DEFAULT_DEPLOYMENT_ID.to_owned(),
            privacy,
        }
    }

    /// The claims the dev platform would send tool `client_id` for Ada's launch.
    fn claims_for(dev: &DevPlatform, client_id: &str) -> serde_json::Value {
        let ada = dev.user("ada").unwrap();
        let t = dev.tool(client_id).unwrap();
        let spec =
            LaunchSpec::resource_link(client_id, t.deployment_id.clone(), ada.id.clone(), "l-1");
        let claims = dev
            .inner
            .platform
            .id_token_claims(&t.registration, &ada.platform_user(), &spec, "n")
            .unwrap();
        serde_json::to_value(claims).unwrap()
    }

    #[tokio::test]
    async fn each_tools_privacy_settings_decide_what_it_learns() {
        let key = SigningKey::from_pem(PLATFORM_PEM, lti_jose::Algorithm::RS256).unwrap();
        let open = DevPrivacyConfig {
            share_email: false,
            share_username: true,
            share_sourcedid: true,
            ..DevPrivacyConfig::default()
        };
        let dev = DevPlatform::with_signing_key(
            "http://localhost:4000",
            &[
                tool("default", DevPrivacyConfig::default()),
                tool("open", open),
            ],
            key,
        )
        .unwrap();
        let custom = "https://purl.imsglobal.org/spec/lti/claim/custom";
        let lis = "https://purl.imsglobal.org/spec/lti/claim/lis";

        let default = claims_for(&dev, "default");
        assert_ne!(default["sub"], "ada", "pseudonymous");
        assert_eq!(default["name"], "Ada Lovelace");
        assert_eq!(default["email"], "ada@example.edu");
        assert_eq!(default[custom]["username"], "$User.username", "not shared");
        assert!(default.get(lis).is_none(), "{default}");

        let open = claims_for(&dev, "open");
        assert_eq!(open["name"], "Ada Lovelace");
        assert!(open.get("email").is_none(), "{open}");
        assert_eq!(open[custom]["username"], "ada");
        assert_eq!(open[lis]["person_sourcedid"], "SIS-ada");
    }
}
