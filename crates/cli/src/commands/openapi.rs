//! `dbapp openapi`: prints the server's OpenAPI document (generated from the code), from which
//! the web UI's types are generated.

#[derive(Debug, clap::Args)]
pub(crate) struct OpenapiArgs {}

pub(crate) fn run(_args: OpenapiArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let document = dbapp_server::openapi::openapi();
    // `write!`, not `println!`, which panics when the reader has gone (`dbapp openapi | head`).
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &document)?;
    writeln!(out)?;
    Ok(())
}
