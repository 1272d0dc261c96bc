//! Runs the example tool: `cargo run -p actix-tool`, configured by environment
//! variables (`TOOL_URL`, `BIND`, `PLATFORM_ISSUER`, `CLIENT_ID`, `AUTH_LOGIN_URL`,
//! `AUTH_TOKEN_URL`, `JWKS_URL`, `DEPLOYMENT_ID`).

use std::sync::Arc;

use actix_web::{App, HttpServer, web};
use lti_registry::{Deployment, KeySource, PlatformRegistration};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[actix_web::main]
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
    let (_, key_pem) = lti_jose::SigningKey::generate_rsa(2048)?; // or read a stored key
    let tool = Arc::new(actix_tool::build_tool(&base, platform, &key_pem).await?);
    let visits = web::Data::new(actix_tool::Visits::default());
    let services = actix_tool::default_services()?;
    println!(
        "login: {base}lti/login  launch: {base}lti/launch  jwks: {base}.well-known/jwks.json  target: {base}app"
    );
    HttpServer::new(move || {
        App::new().configure(actix_tool::routes(
            tool.clone(),
            visits.clone(),
            services.clone(),
        ))
    })
    .bind(env("BIND", "127.0.0.1:3000"))?
    .run()
    .await?;
    Ok(())
}
