//! `drover health`: is a `drover serve` alive? A plain HTTP/1.1 GET of its
//! `/healthz` over a TCP stream, for a container's HEALTHCHECK: the image
//! needs no curl and no shell for it. Exit 0 on a 200, 1 on anything else.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// The server: HOST:PORT, or a PORT on 127.0.0.1. An unspecified
    /// address (0.0.0.0, [::]) is asked on loopback, so `serve --listen`'s
    /// value works as it is.
    #[arg(
        long,
        value_name = "ADDR",
        env = "DROVER_HEALTH_ADDR",
        default_value = "127.0.0.1:7070"
    )]
    addr: String,
    /// How long the whole check may take: connecting, asking, the answer.
    #[arg(long, value_name = "DURATION", default_value = "2s",
          value_parser = crate::model::job::parse_duration)]
    timeout: Duration,
}

/// Exit code 0 when the server answers `GET /healthz` with 200 within the
/// timeout; otherwise 1, and why on stderr.
pub fn health(args: HealthArgs) -> u8 {
    match check(&args.addr, args.timeout) {
        Ok(()) => 0,
        Err(why) => {
            eprintln!("drover health: {}: {why}", args.addr);
            1
        }
    }
}

fn check(addr: &str, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {}", humantime::format_duration(timeout)))
    };
    let mut stream = None;
    let mut last = String::from("no address");
    for target in resolve(addr)? {
        match TcpStream::connect_timeout(&target, left()?) {
            Ok(s) => {
                stream = Some((s, target));
                break;
            }
            Err(e) => last = format!("cannot connect to {target}: {e}"),
        }
    }
    let (mut stream, host) = stream.ok_or(last)?;
    stream
        .set_write_timeout(Some(left()?))
        .map_err(|e| e.to_string())?;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {host}\r\nUser-Agent: drover-health\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("cannot send the request: {e}"))?;
    // The status line is all it needs.
    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 128];
    while !head.contains(&b'\n') && head.len() < 1024 {
        stream
            .set_read_timeout(Some(left()?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                left()?;
            }
            Err(e) => return Err(format!("cannot read the answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or("").trim_end();
    let mut words = line.split(' ');
    match (words.next(), words.next()) {
        (Some(v), Some("200")) if v.starts_with("HTTP/1.") => Ok(()),
        _ if line.is_empty() => Err("no answer (connection closed)".into()),
        _ => Err(format!("GET /healthz answered {line:?}")),
    }
}

/// The addresses to try for `addr`.
fn resolve(addr: &str) -> Result<Vec<SocketAddr>, String> {
    if let Ok(port) = addr.parse::<u16>() {
        return Ok(vec![SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port)]);
    }
    let loopback = |mut a: SocketAddr| {
        if a.ip().is_unspecified() {
            a.set_ip(match a.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        a
    };
    Ok(addr
        .to_socket_addrs()
        .map_err(|e| format!("not an address (HOST:PORT or PORT): {e}"))?
        .map(loopback)
        .collect())
}
