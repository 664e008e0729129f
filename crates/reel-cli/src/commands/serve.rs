//! `reel serve`: runs the HTTP server (crate `reel-server`) until SIGINT or SIGTERM.

use crate::cli::ServeArgs;
use crate::error::{CliError, CliResult};
use reel::Durability;

pub fn run(a: ServeArgs) -> CliResult {
    let durability: Durability = a.durability.parse().map_err(reel::Error::from)?;
    let max_body = crate::units::parse_size(&a.max_body)
        .map_err(|e| CliError::Input(format!("--max-body: {e}")))?;
    if let Some(url) = &a.follow {
        let url = url.trim_end_matches('/').to_string();
        let (source, root, only) = (url.clone(), a.root.clone(), a.stores.clone());
        std::thread::Builder::new()
            .name("reel-follow".into())
            .spawn(move || super::replicate::follow_server(&source, &root, &only))
            .map_err(|e| CliError::Input(format!("cannot start following {url}: {e}")))?;
    }
    let config = reel_server::ServerConfig {
        root: a.root,
        listen: a.listen,
        max_body: usize::try_from(max_body).unwrap_or(usize::MAX),
        durability,
        token_ttl: std::time::Duration::from_secs(a.token_ttl),
        insecure_open: a.insecure_open,
        tls: a.tls_cert.zip(a.tls_key),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Input(format!("cannot start the server's runtime: {e}")))?;
    let result = runtime.block_on(async {
        let server = reel_server::Server::bind(config).await?;
        server.run(reel_server::shutdown_signal()).await
    });
    // The stores are synced by now; work still on the blocking pool (a request whose
    // connection the shutdown dropped) must not hold up the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    result.map_err(|e| CliError::Input(e.to_string()))
}
