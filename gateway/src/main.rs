//! `sse-gateway`: a reverse proxy for Server-Sent Events on pingora.
//!
//! The binary is wiring: parse the command line, load the configuration,
//! build the pingora server ([`app`]) and run it. Exit statuses: 0 ok, 1 a
//! failed `check`, a problem `doctor` found, or a start-up failure, 64
//! (`EX_USAGE`) a bad command line or an invalid configuration.

mod allocator;
mod app;
mod check;
mod cli;
mod demo;
mod doctor;
mod logging;
mod runtime_dir;
mod services;
mod settings;
mod state;

use std::process::ExitCode;

use sse_gateway_config::GatewayConfig;

use crate::app::StartOptions;
use crate::cli::{Cli, Command, DemoArgs, RunArgs, EX_USAGE};

fn main() -> ExitCode {
    let cli = match Cli::parse_from_args(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout and are not errors.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Check(args) => ExitCode::from(check::run(&args.config)),
        Command::Run(args) => run(&args),
        Command::Demo(args) => demo(&args),
        Command::Doctor(args) => ExitCode::from(doctor::run(&args)),
    }
}

/// `sse-gateway run`: serves until a signal ends the process.
fn run(args: &RunArgs) -> ExitCode {
    let config = match sse_gateway_config::load(&args.config) {
        Ok(config) => config,
        Err(errors) => {
            report_error(&format!("Invalid configuration:\n{errors}"));
            return ExitCode::from(EX_USAGE);
        }
    };
    logging::init(&config.log);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let options = StartOptions {
        upgrade: args.upgrade,
        daemon: args.daemon,
        demo: None,
    };
    serve(&config, options, None)
}

/// `sse-gateway demo`: the demo upstream, the gateway and the demo page.
fn demo(args: &DemoArgs) -> ExitCode {
    let (config, upstream) = match demo::prepare(args) {
        Ok(prepared) => prepared,
        Err(e) => {
            report_error(&format!("{e:#}"));
            return ExitCode::FAILURE;
        }
    };
    logging::init(&config.log);
    let banner = demo::banner(&config);
    serve(
        &config,
        StartOptions {
            demo: Some(upstream),
            ..StartOptions::default()
        },
        Some(banner),
    )
}

/// Builds the server, logs the summary (and prints `banner`), then runs it
/// until it exits the process.
fn serve(config: &GatewayConfig, options: StartOptions, banner: Option<String>) -> ExitCode {
    let server = match app::build(config, options) {
        Ok(server) => server,
        Err(e) => {
            tracing::error!("cannot start: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    app::log_summary(config);
    if let Some(banner) = banner {
        print_banner(&banner);
    }
    server.run_forever()
}

#[allow(
    clippy::print_stdout,
    reason = "the demo prints its URLs for the user, by design"
)]
fn print_banner(banner: &str) {
    println!("{banner}");
}

#[allow(
    clippy::print_stderr,
    reason = "errors before (or without) a log subscriber"
)]
fn report_error(message: &str) {
    eprintln!("{message}");
}
