//! The demos' command line, shared by the axum demo and the actix-web demo
//! (`corrlog-actix/examples/actix_demo`): the same flags, the same
//! messages.

use std::net::SocketAddr;

use corrlog::http::IpNet;

const USAGE: &str = "usage: {program} [--addr HOST:PORT] [--downstream URL] [--trusted-proxy ADDR_OR_NETWORK]... [--jitter-ms N]
  --addr           where to listen (default 127.0.0.1:3000)
  --downstream     base URL of a service that GET /orders/{id} also calls,
                   e.g. http://127.0.0.1:3001 (another demo instance)
  --trusted-proxy  a proxy whose X-Forwarded-For the access line's client_ip
                   believes: an address (10.0.0.1) or a network (10.0.0.0/8);
                   repeatable (default: none, client_ip is the peer)
  --jitter-ms      random sleep of up to N ms between the layers of
                   GET /orders/{id} (default 0), to watch concurrent requests
                   interleave without mixing their ids";

pub(crate) struct Args {
    pub(crate) addr: SocketAddr,
    pub(crate) downstream: Option<String>,
    pub(crate) trusted_proxies: Vec<IpNet>,
    pub(crate) jitter_ms: u64,
}

/// An address or a network, as `--trusted-proxy` takes it.
fn parse_proxy(value: &str, usage: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!(
                "--trusted-proxy {value:?} is neither an address (10.0.0.1) nor a network (10.0.0.0/8)\n{usage}"
            )
        })
}

/// The command line, or the message to print (usage included) and exit 2
/// with.
pub(crate) fn parse(program: &str) -> Result<Args, String> {
    let usage = USAGE.replace("{program}", program);
    let usage = usage.as_str();
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:3000".to_owned();
    let mut downstream = None;
    let mut jitter_ms = 0;
    let mut trusted_proxies = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trusted-proxy" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--trusted-proxy needs a value\n{usage}"))?;
                trusted_proxies.push(parse_proxy(&value, usage)?);
            }
            "--jitter-ms" => {
                let value = args
                    .next()
                    .ok_or_else(|| format!("--jitter-ms needs a value\n{usage}"))?;
                jitter_ms = value.parse().map_err(|_| {
                    format!("--jitter-ms {value:?} is not a number of milliseconds\n{usage}")
                })?;
            }
            "--addr" => {
                addr = args
                    .next()
                    .ok_or_else(|| format!("--addr needs a value\n{usage}"))?;
            }
            "--downstream" => {
                let url = args
                    .next()
                    .ok_or_else(|| format!("--downstream needs a URL\n{usage}"))?;
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!(
                        "--downstream {url:?} is not an http(s) URL\n{usage}"
                    ));
                }
                downstream = Some(url);
            }
            "-h" | "--help" => return Err(usage.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{usage}")),
        }
    }
    let addr = addr.parse().map_err(|e| {
        format!("invalid --addr {addr:?}: {e}; expected HOST:PORT like 127.0.0.1:3000")
    })?;
    Ok(Args {
        addr,
        downstream,
        trusted_proxies,
        jitter_ms,
    })
}
