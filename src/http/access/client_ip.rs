//! The client's address: the peer, or, behind trusted proxies, the
//! nearest untrusted hop the proxies recorded.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use http::{HeaderMap, Request};
use ipnet::IpNet;

/// Which header family trusted proxies record the client in. Only this
/// family is read; the other is ignored, so a client cannot add a hop in a
/// header the proxy passes through untouched.
///
/// | your proxy | it writes | choose |
/// |---|---|---|
/// | nginx `proxy_add_x_forwarded_for` | appends to `X-Forwarded-For` | [`ClientIpHeader::XForwardedFor`] |
/// | AWS ALB, Google Cloud LB | appends to `X-Forwarded-For` | [`ClientIpHeader::XForwardedFor`] |
/// | HAProxy `option forwardfor` | appends to `X-Forwarded-For` | [`ClientIpHeader::XForwardedFor`] |
/// | Envoy (`use_remote_address`) | appends to `X-Forwarded-For` | [`ClientIpHeader::XForwardedFor`] |
/// | nginx `proxy_set_header Forwarded ...`, Caddy, some CDNs | appends to `Forwarded` (RFC 7239) | [`ClientIpHeader::Forwarded`] |
///
/// ```
/// use corrlog::http::{AccessLog, ClientIpHeader};
///
/// let access = AccessLog::default()
///     .trusted_proxies(["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()])
///     .client_ip_header(ClientIpHeader::Forwarded);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientIpHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default).
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    Forwarded,
}

/// A trusted network, with IPv4-mapped IPv6 networks stored as IPv4 so
/// that they match either way an address arrives.
pub(super) fn normalize_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(|n| IpNet::V4(n.trunc()))
                .unwrap_or(net),
            None => net,
        },
        _ => net.trunc(),
    }
}

/// An address as compared against networks: IPv4-mapped as IPv4.
fn normalize_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

pub(super) fn peer_addr<B>(req: &Request<B>) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = req
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0.ip());
    }
    req.extensions().get::<SocketAddr>().map(SocketAddr::ip)
}

/// The peer address, or, when the peer is a trusted proxy, the nearest
/// untrusted address in the chosen header family (read right to left).
pub(super) fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
    family: ClientIpHeader,
) -> IpAddr {
    let is_trusted = |ip: IpAddr| {
        let ip = normalize_ip(ip);
        trusted.iter().any(|net| net.contains(&ip))
    };
    if !is_trusted(peer) {
        return peer;
    }
    // Each hop as the proxy to its right recorded it; `None` for one that
    // cannot be read (`for=unknown`, `for=_hidden`, junk, non-UTF-8).
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    match family {
        ClientIpHeader::XForwardedFor => {
            for value in headers.get_all("x-forwarded-for") {
                match value.to_str() {
                    Ok(text) => hops.extend(text.split(',').map(parse_hop)),
                    Err(_) => hops.push(None),
                }
            }
        }
        ClientIpHeader::Forwarded => {
            for value in headers.get_all(http::header::FORWARDED) {
                let Ok(text) = value.to_str() else {
                    hops.push(None);
                    continue;
                };
                for element in text.split(',') {
                    // One hop per element: its `for=` parameter, or none.
                    let hop = element.split(';').find_map(|pair| {
                        let pair = pair.trim();
                        let (name, value) = pair.split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("for")
                            .then(|| parse_hop(value))
                    });
                    if let Some(hop) = hop {
                        hops.push(hop);
                    }
                }
            }
        }
    }
    // From the right: skip our own proxies; the first other hop is the
    // client. Stop at a hop that cannot be read: anything left of it was
    // written by someone we cannot vouch for, so fall back to the peer.
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip) => continue,
            Some(ip) => return *ip,
            None => return peer,
        }
    }
    peer
}

/// One hop: an address, optionally quoted, bracketed or with a port.
fn parse_hop(value: &str) -> Option<IpAddr> {
    let v = value.trim().trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    if let Ok(ip) = v.parse() {
        return Some(ip);
    }
    // ipv4:port (an IPv6 address with a port is always bracketed)
    let (ip, port) = v.rsplit_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        normalize_net(s.parse().unwrap())
    }

    fn contains(n: IpNet, s: &str) -> bool {
        n.contains(&normalize_ip(ip(s)))
    }

    #[test]
    fn networks_match_by_prefix_and_ipv4_mapped_either_way() {
        let pods = net("10.0.0.0/8");
        assert!(contains(pods, "10.255.3.4"));
        assert!(contains(pods, "::ffff:10.1.2.3"));
        assert!(!contains(pods, "11.0.0.1"));
        assert!(!contains(pods, "fd00::1"));
        let v6 = net("fd00::/8");
        assert!(contains(v6, "fd12:3456::1"));
        assert!(!contains(v6, "fe80::1"));
        let host = normalize_net(IpNet::from(ip("192.0.2.1")));
        assert!(contains(host, "192.0.2.1"));
        assert!(!contains(host, "192.0.2.2"));
        assert!(contains(net("0.0.0.0/0"), "203.0.113.9"));
        let mapped_host = normalize_net(IpNet::from(ip("::ffff:127.0.0.1")));
        assert!(contains(mapped_host, "127.0.0.1"));
        assert!(contains(mapped_host, "::ffff:127.0.0.1"));
        assert!(!contains(mapped_host, "127.0.0.2"));
        let mapped_net = net("::ffff:10.0.0.0/104");
        assert!(contains(mapped_net, "10.9.8.7"));
        assert!(!contains(mapped_net, "11.0.0.1"));
        // Host bits set in the network address are ignored.
        assert!(contains(net("10.1.2.3/8"), "10.200.0.1"));
    }

    #[test]
    fn hops_parse_with_and_without_ports() {
        assert_eq!(parse_hop(" 203.0.113.7:51234"), Some(ip("203.0.113.7")));
        assert_eq!(parse_hop("\"[2001:db8::7]:443\""), Some(ip("2001:db8::7")));
        assert_eq!(parse_hop("2001:db8::7"), Some(ip("2001:db8::7")));
        assert_eq!(parse_hop("_hidden"), None);
        assert_eq!(parse_hop("unknown"), None);
        assert_eq!(parse_hop("1.2.3.4:"), None);
        assert_eq!(parse_hop("1.2.3.4:x"), None);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, value.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_chosen_family_is_read() {
        let proxy = ip("10.0.0.1");
        let trusted = [net("10.0.0.0/8")];
        let both = headers(&[
            ("forwarded", "for=6.6.6.6"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let xff = client_ip(proxy, &both, &trusted, ClientIpHeader::XForwardedFor);
        assert_eq!(xff, ip("203.0.113.9"), "Forwarded ignored");
        let fwd = client_ip(proxy, &both, &trusted, ClientIpHeader::Forwarded);
        assert_eq!(fwd, ip("6.6.6.6"), "X-Forwarded-For ignored");
        // A client's `Forwarded: for=unknown` cannot hide it behind the proxy.
        let unknown = headers(&[
            ("forwarded", "for=unknown"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        let got = client_ip(proxy, &unknown, &trusted, ClientIpHeader::XForwardedFor);
        assert_eq!(got, ip("198.51.100.4"));
        // An untrusted peer's headers are never read.
        let direct = client_ip(
            ip("198.51.100.7"),
            &both,
            &trusted,
            ClientIpHeader::XForwardedFor,
        );
        assert_eq!(direct, ip("198.51.100.7"));
    }
}
