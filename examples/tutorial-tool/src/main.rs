//! Runs the tutorial tool (`cargo run -p tutorial-tool`). The defaults are the
//! dev platform's (`lti platform --config examples/tutorial-tool/platform.toml`);
//! environment variables point it at a real LMS (see `docs/tutorial.md`).

// ANCHOR: main
use lti_registry::{Deployment, KeySource, PlatformRegistration};

/// An environment variable, or the dev platform's value.
fn env(name: &str, dev_default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| dev_default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), tutorial_tool::BoxError> {
    let tool_url = env("TOOL_URL", "http://127.0.0.1:3000/");
    let issuer = env("PLATFORM_ISSUER", "http://localhost:4000");
    let platform = PlatformRegistration::new(
        issuer.clone(),
        env("CLIENT_ID", "tutorial-tool"),
        env("AUTH_LOGIN_URL", &format!("{issuer}/auth")),
        env("AUTH_TOKEN_URL", &format!("{issuer}/token")),
        KeySource::JwksUrl {
            url: env("JWKS_URL", &format!("{issuer}/.well-known/jwks.json")),
        },
    )
    .with_deployment(Deployment::active(env("DEPLOYMENT_ID", "1")))
    // canvas, moodle, blackboard, brightspace, sakai, schoology or generic.
    .with_quirks(env("PROFILE", "generic").parse()?);

    // `lti keygen --out keys` writes keys/private.pem; without TOOL_KEY a fresh
    // key is generated at each start (fine with the dev platform, which fetches
    // the tool's keys when it needs them).
    let key_pem = match std::env::var("TOOL_KEY") {
        Ok(path) => std::fs::read_to_string(path)?,
        Err(_) => lti_jose::SigningKey::generate_rsa(2048)?.1,
    };
    // The dev platform is on loopback; a real LMS is not (set it to false).
    let allow_private = env("ALLOW_PRIVATE_ADDRESSES", "true") == "true";
    let state = tutorial_tool::build_state(&tool_url, platform, key_pem, allow_private).await?;

    let bind = env("BIND", "127.0.0.1:3000");
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("tutorial tool on {tool_url} (listening on {bind})");
    axum::serve(listener, tutorial_tool::app(state)).await?;
    Ok(())
}
// ANCHOR_END: main
