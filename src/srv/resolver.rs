//! Which DNS servers to ask: `RECONFIG_DNS_SERVER`, else the `nameserver`s of resolv.conf.

use std::net::{IpAddr, SocketAddr};

/// Environment variable naming the DNS server (`ip:port`, or `ip` for port 53) to ask instead of
/// the nameservers in /etc/resolv.conf.
pub const DNS_SERVER_ENV: &str = "RECONFIG_DNS_SERVER";

const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The servers to ask in turn, or why there are none.
pub(super) fn default_servers() -> Result<Vec<SocketAddr>, String> {
    if let Some(value) = std::env::var_os(DNS_SERVER_ENV) {
        let value = value.to_string_lossy();
        return parse_server(&value)
            .map(|server| vec![server])
            .ok_or_else(|| {
                format!("{DNS_SERVER_ENV}={value} is not an address (use ip:port or ip)")
            });
    }
    let text = std::fs::read_to_string(RESOLV_CONF)
        .map_err(|err| format!("cannot read {RESOLV_CONF}: {err} (or set {DNS_SERVER_ENV})"))?;
    let servers = resolv_conf_nameservers(&text);
    if servers.is_empty() {
        return Err(format!(
            "no nameserver in {RESOLV_CONF} (or set {DNS_SERVER_ENV}=ip:port)"
        ));
    }
    Ok(servers)
}

fn parse_server(text: &str) -> Option<SocketAddr> {
    let text = text.trim();
    text.parse::<SocketAddr>().ok().or_else(|| {
        text.parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// The `nameserver` addresses of a resolv.conf, port 53. Scoped IPv6 addresses are skipped.
fn resolv_conf_nameservers(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(address)) => address.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_are_parsed() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.1\nnameserver ::1\n\
                    nameserver fe80::1%eth0\noptions ndots:2\n";
        let servers: Vec<String> = resolv_conf_nameservers(text)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(servers, ["10.0.0.1:53", "[::1]:53"]);
    }

    #[test]
    fn server_addresses_accept_a_missing_port() {
        assert_eq!(
            parse_server("127.0.0.1:5353"),
            Some(SocketAddr::from(([127, 0, 0, 1], 5353)))
        );
        assert_eq!(
            parse_server("127.0.0.1"),
            Some(SocketAddr::from(([127, 0, 0, 1], 53)))
        );
        assert_eq!(parse_server("dns.example"), None);
    }
}
