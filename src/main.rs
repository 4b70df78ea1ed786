//! `sluice [server.properties] [--override key=value ...]`: parse config, init tracing, run.
//! A failed start prints one line, `sluice: <cause>`, naming the setting and value to change.
//! `sluice healthcheck [host:port]`: probe /health/ready (container HEALTHCHECK), exit 0 if ready.
//! `sluice format ...` / `sluice random-uuid`: kafka-storage.sh's commands (`sluice::format`).

use std::process::ExitCode;

use sluice::config;
use sluice::server::Server;

fn main() -> ExitCode {
    // Before config parsing: a HEALTHCHECK must not depend on the broker's config being valid.
    let mut args = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    match args.next().as_deref() {
        Some("healthcheck") => return healthcheck(args.next()),
        Some(command @ ("format" | "random-uuid")) => {
            return sluice::format::main(command, args.collect())
        }
        _ => {}
    }
    let loaded = match config::load_from_process() {
        Ok(loaded) => loaded,
        Err(e) if e.is_informational() => {
            println!("{e}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("sluice: {e}");
            return ExitCode::from(2);
        }
    };
    // A valid Kafka config asking for what Sluice does not serve yet (a quorum of several
    // controllers, say) must stop here, never run as a cluster of one.
    if let Err(e) = config::served::check(&loaded.config) {
        eprintln!("sluice: {e}");
        return ExitCode::from(2);
    }
    init_tracing(loaded.config.log_format);
    for info in &loaded.infos {
        tracing::info!("{info}");
    }
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sluice: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(loaded.config));
    // A failed start may leave blocking work (a recovery read) behind: exit promptly anyway.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn run(config: config::Config) -> ExitCode {
    // The listener accepts before the broker has finished starting (it replays
    // __consumer_offsets, for one): a SIGTERM in that window must still mean a clean stop.
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let server = match Server::start(config).await {
        Ok(server) => server,
        Err(e) => {
            // One plain line on stderr whatever sluice.log.format says: an operator reads it
            // (or `docker logs` shows it) to learn which setting to change.
            eprintln!("sluice: {e}");
            return ExitCode::FAILURE;
        }
    };
    wait_for_signal(term).await;
    tracing::info!("shutting down");
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// SIGTERM (docker stop, kill) or SIGINT (Ctrl-C) start a clean shutdown.
async fn wait_for_signal(term: Option<tokio::signal::unix::Signal>) {
    match term {
        Some(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Logs go to stderr; RUST_LOG (per-module levels, `EnvFilter` syntax) overrides the default
/// `info` level; sluice.log.format=json writes one JSON object per line with the request span.
fn init_tracing(format: config::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        config::LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .init(),
    }
}

/// Probes /health/ready at `address`, else at the port of `KAFKA_SLUICE_HTTP_LISTENER`, else
/// 127.0.0.1:9644. Exit 0 when ready, 1 otherwise (Docker's HEALTHCHECK convention).
fn healthcheck(address: Option<String>) -> ExitCode {
    let address = address.unwrap_or_else(|| {
        let configured = std::env::var("KAFKA_SLUICE_HTTP_LISTENER").unwrap_or_default();
        let configured = configured.trim_start_matches("http://");
        match configured.rsplit_once(':') {
            Some((_, port)) if !port.is_empty() => format!("127.0.0.1:{port}"),
            _ => "127.0.0.1:9644".to_string(),
        }
    });
    match sluice::server::http::probe_ready(&address, std::time::Duration::from_secs(3)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("sluice at {address} is not ready");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
