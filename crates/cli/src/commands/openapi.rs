//! `dbapp openapi`: prints the server's OpenAPI document (generated from the code), from which
//! the web UI's types are generated.

#[derive(Debug, clap::Args)]
pub(crate) struct OpenapiArgs {}

pub(crate) fn run(_args: OpenapiArgs) -> anyhow::Result<()> {
    let document = dbapp_server::openapi::openapi();
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
