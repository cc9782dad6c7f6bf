//! `sse-gateway doctor URL`: probes an upstream with the settings a route
//! would get by default ([`sse_gateway_upstream::probe`]) and prints what
//! would break behind the gateway. Exit status: 0 when nothing is a
//! problem (warnings included), 1 on a problem, 64 on a bad argument.

use std::io::Write;
use std::time::Duration;

use sse_gateway_config::{parse_duration, TopicSettingsConfig};
use sse_gateway_upstream::{probe, ProbeSettings, UpstreamTls};

use crate::cli::{DoctorArgs, EX_USAGE};
use crate::settings;

/// Runs the probe on a small runtime of its own; returns the exit status.
pub(crate) fn run(args: &DoctorArgs) -> u8 {
    let probe_settings = match prepare(args) {
        Ok(settings) => settings,
        Err(message) => {
            say_err(&format!("sse-gateway doctor: {message}\n"));
            return EX_USAGE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say_err(&format!(
                "sse-gateway doctor: cannot start a runtime: {e}\n"
            ));
            return 1;
        }
    };
    let report = runtime.block_on(probe(&probe_settings));
    // A closed stdout leaves the exit status as the only answer.
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "sse-gateway doctor {}\n{report}", args.url);
    let _ = stdout.flush();
    u8::from(report.failed())
}

/// Writes to stderr (a closed stderr is ignored).
fn say_err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// The probe's settings: the URL, headers and TLS options from the command
/// line, everything else as a route's defaults.
fn prepare(args: &DoctorArgs) -> Result<ProbeSettings, String> {
    let url = url::Url::parse(&args.url).map_err(|e| format!("bad URL {:?}: {e}", args.url))?;
    let listen = parse_duration(&args.listen)
        .ok()
        .filter(|d| !d.is_zero() && *d <= Duration::from_secs(600))
        .ok_or_else(|| format!("bad --listen {:?} (a duration up to 10m)", args.listen))?;
    let mut headers = Vec::new();
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| format!("bad --header {header:?} (Name: value)"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let tls = UpstreamTls {
        ca_file: args.ca_file.clone(),
        insecure_skip_verify: args.insecure_skip_verify,
    };
    let upstream =
        settings::connection_settings(&TopicSettingsConfig::default(), headers, tls, url);
    Ok(ProbeSettings {
        upstream,
        listen,
        events: args.events.clamp(1, 10_000),
    })
}
