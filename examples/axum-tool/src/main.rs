//! Runs the example tool: `cargo run -p axum-tool`, configured by environment
//! variables (`TOOL_URL`, `PLATFORM_ISSUER`, `CLIENT_ID`, `AUTH_LOGIN_URL`,
//! `AUTH_TOKEN_URL`, `JWKS_URL`, `DEPLOYMENT_ID`, and `TOOL_KEY`: a PEM file
//! from `lti keygen`; without it a fresh key is generated at each start).

use std::sync::Arc;

use lti_registry::{Deployment, KeySource, PlatformRegistration};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let base = env("TOOL_URL", "http://127.0.0.1:3000/");
    let platform = PlatformRegistration::new(
        env("PLATFORM_ISSUER", "https://lms.example.edu"),
        env("CLIENT_ID", "client-1"),
        env("AUTH_LOGIN_URL", "https://lms.example.edu/auth"),
        env("AUTH_TOKEN_URL", "https://lms.example.edu/token"),
        KeySource::JwksUrl {
            url: env("JWKS_URL", "https://lms.example.edu/jwks"),
        },
    )
    .with_deployment(Deployment::active(env("DEPLOYMENT_ID", "1")));
    let key_pem = match std::env::var("TOOL_KEY") {
        Ok(path) => std::fs::read_to_string(path)?,
        Err(_) => lti_jose::SigningKey::generate_rsa(2048)?.1,
    };
    let tool = axum_tool::build_tool(&base, platform, key_pem).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "login: {base}lti/login  launch: {base}lti/launch  jwks: {base}.well-known/jwks.json  target: {base}app"
    );
    axum::serve(
        listener,
        axum_tool::app(Arc::new(tool), axum_tool::default_services()?),
    )
    .await?;
    Ok(())
}
