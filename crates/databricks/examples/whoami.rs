//! Who am I, as the app and as a user: the smallest use of dbapp-databricks from another Rust
//! program (docs/library.md). Compiled in CI by `cargo clippy --all-targets`.
//!
//! ```sh
//! dbapp emulate --port 8089 &            # or any real workspace
//! DATABRICKS_HOST=http://127.0.0.1:8089 DATABRICKS_CLIENT_ID=dbapp-sp \
//!   DATABRICKS_CLIENT_SECRET=dev-secret DATABRICKS_USER_TOKEN=dev-token-alice \
//!   cargo run -p dbapp-databricks --example whoami
//! ```

use dbapp_databricks::{Client, Config, Context, UserToken};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Where are we, and which strategy is the app's own identity? The auth type is pinned, so a
    // stray DATABRICKS_TOKEN beside the service principal cannot cause a dual-auth conflict.
    let context = Context::from_process_env();
    println!("context: {context}");
    let client = Client::new(Config::from_env(context.app_settings())?)?;

    let app = client.as_app().me().await?;
    println!(
        "the app is {} ({})",
        app.user_name,
        client.config().auth_type()
    );

    // A user's token (in a server: the X-Forwarded-Access-Token header) is used only through
    // `as_user`, with an explicit PAT-style auth type and never a fallback to the app.
    if let Ok(raw) = std::env::var("DATABRICKS_USER_TOKEN") {
        let token = UserToken::parse(&raw)?;
        let user = client.as_user(&token);
        let me = user.me().await?;
        let catalogs = user.list_all_catalogs().await?;
        let names: Vec<&str> = catalogs.iter().map(|c| c.name.as_str()).collect();
        println!("the user is {}; they see catalogs {names:?}", me.user_name);
    }
    Ok(())
}
