//! Listener endpoints (`NAME://host:port`), the listener -> security protocol map, and controller
//! quorum addresses, parsed as Kafka's `SocketServerConfigs` and `QuorumConfig` read them.

use std::fmt;

use indexmap::IndexMap;

/// Kafka's security protocols (`org.apache.kafka.common.security.auth.SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub const ALL: [SecurityProtocol; 4] = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ];

    /// Kafka's name, e.g. `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Kafka's numeric id (`SecurityProtocol.id`), as RegisterBrokerRecord stores it.
    pub fn id(self) -> i16 {
        match self {
            SecurityProtocol::Plaintext => 0,
            SecurityProtocol::Ssl => 1,
            SecurityProtocol::SaslPlaintext => 2,
            SecurityProtocol::SaslSsl => 3,
        }
    }

    /// Parses a protocol name case-insensitively, as `SecurityProtocol.forName` does.
    pub fn from_name(name: &str) -> Option<SecurityProtocol> {
        let upper = name.trim().to_ascii_uppercase();
        SecurityProtocol::ALL
            .into_iter()
            .find(|p| p.name() == upper)
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One listener endpoint. `host` is empty when the listener binds every interface; IPv6 hosts
/// are stored without brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Upper-cased listener name (Kafka's `ListenerName.normalised`).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: SecurityProtocol,
}

impl Listener {
    /// The address to bind: an empty host binds all IPv4 interfaces.
    pub fn bind_address(&self) -> String {
        host_port(
            if self.host.is_empty() {
                "0.0.0.0"
            } else {
                &self.host
            },
            self.port,
        )
    }

    /// True for an empty host or the `0.0.0.0` / `::` wildcard.
    pub fn is_wildcard_host(&self) -> bool {
        self.host.is_empty() || self.host == "0.0.0.0" || self.host == "::"
    }
}

impl fmt::Display for Listener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.name, host_port(&self.host, self.port))
    }
}

/// `host:port`, bracketing IPv6 literals.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits a Kafka CSV list (`Csv.parseCsvList`): entries trimmed, empty entries dropped.
pub fn parse_csv_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parses `host:port` or `[v6]:port` into host (unbracketed) and port.
pub fn parse_host_port(input: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = input.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| format!("missing ']' in '{input}'"))?;
        let after = &rest[close + 1..];
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| format!("missing ':port' in '{input}'"))?;
        (&rest[..close], port)
    } else {
        let colon = input
            .rfind(':')
            .ok_or_else(|| format!("missing ':port' in '{input}'"))?;
        (&input[..colon], &input[colon + 1..])
    };
    let valid_host = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '%' | '.' | '_' | ':'));
    if !valid_host {
        return Err(format!("invalid host '{host}' in '{input}'"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port '{port}' in '{input}' (must be 0-65535)"))?;
    Ok((host.to_string(), port))
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`), names upper-cased.
pub fn parse_security_protocol_map(
    value: &str,
) -> Result<IndexMap<String, SecurityProtocol>, String> {
    let mut map = IndexMap::new();
    for entry in parse_csv_list(value) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| format!("entry '{entry}' is not of the form LISTENER_NAME:PROTOCOL"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(format!("entry '{entry}' has an empty listener name"));
        }
        let proto = SecurityProtocol::from_name(proto)
            .ok_or_else(|| format!("unknown security protocol '{}'", proto.trim()))?;
        if map.insert(name.clone(), proto).is_some() {
            return Err(format!("listener name {name} appears more than once"));
        }
    }
    Ok(map)
}

/// Parses a `listeners` / `advertised.listeners` value. Each listener name must map to a
/// security protocol (through `protocol_map`, or by being a protocol name itself when the map
/// does not mention it); names must be unique.
pub fn parse_listeners(
    value: &str,
    protocol_map: &IndexMap<String, SecurityProtocol>,
) -> Result<Vec<Listener>, String> {
    let mut out: Vec<Listener> = Vec::new();
    for entry in parse_csv_list(value) {
        let (name, address) = entry
            .split_once("://")
            .ok_or_else(|| format!("Unable to parse {entry} to a broker endpoint"))?;
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(format!("Unable to parse {entry} to a broker endpoint"));
        }
        let (host, port) = parse_host_port(address)
            .map_err(|e| format!("Unable to parse {entry} to a broker endpoint: {e}"))?;
        let security_protocol = protocol_map
            .get(&name)
            .copied()
            .or_else(|| SecurityProtocol::from_name(&name))
            .ok_or_else(|| {
                format!(
                    "No security protocol defined for listener {name} \
                     (add it to listener.security.protocol.map)"
                )
            })?;
        if out.iter().any(|l| l.name == name) {
            return Err(format!(
                "Each listener must have a different name, listener {name} appears twice"
            ));
        }
        out.push(Listener {
            name,
            host,
            port,
            security_protocol,
        });
    }
    Ok(out)
}

/// Checks what Kafka checks for `listeners` but not for `advertised.listeners`: distinct ports,
/// unless the two listeners are one IPv4 and one IPv6 address (KIP-797). Port 0 (ephemeral)
/// may repeat.
pub fn check_distinct_ports(listeners: &[Listener]) -> Result<(), String> {
    for (i, a) in listeners.iter().enumerate() {
        for b in &listeners[i + 1..] {
            if a.port == 0 || a.port != b.port {
                continue;
            }
            let a_v6 = a.host.contains(':');
            let b_v6 = b.host.contains(':');
            let mixed_families = a_v6 != b_v6 && !a.host.is_empty() && !b.host.is_empty();
            if !mixed_families {
                return Err(format!(
                    "Each listener must have a different port unless exactly one listener has \
                     an IPv4 address and the other IPv6 address, listeners {a} and {b} share \
                     port {}",
                    a.port
                ));
            }
        }
    }
    Ok(())
}

/// One entry of `controller.quorum.voters`: `{id}@{host}:{port}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumVoter {
    pub id: i32,
    pub host: String,
    pub port: u16,
}

/// Parses `controller.quorum.voters`.
impl QuorumVoter {
    /// `host:port` of the voter's controller listener.
    pub fn address(&self) -> String {
        host_port(&self.host, self.port)
    }
}

pub fn parse_quorum_voters(value: &str) -> Result<Vec<QuorumVoter>, String> {
    let mut out: Vec<QuorumVoter> = Vec::new();
    for entry in parse_csv_list(value) {
        let (id, address) = entry.split_once('@').ok_or_else(|| {
            format!("entry '{entry}' is not of the form {{id}}@{{host}}:{{port}}")
        })?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| format!("invalid voter id '{id}' in '{entry}'"))?;
        let (host, port) = parse_host_port(address)?;
        if out.iter().any(|v| v.id == id) {
            return Err(format!("voter id {id} appears more than once"));
        }
        out.push(QuorumVoter { id, host, port });
    }
    Ok(out)
}

/// Parses `controller.quorum.bootstrap.servers` (`host:port,...`).
pub fn parse_bootstrap_servers(value: &str) -> Result<Vec<(String, u16)>, String> {
    parse_csv_list(value)
        .iter()
        .map(|entry| parse_host_port(entry))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_map() -> IndexMap<String, SecurityProtocol> {
        parse_security_protocol_map(
            "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        )
        .unwrap()
    }

    #[test]
    fn empty_host_listener_binds_all_interfaces() {
        let l = parse_listeners("PLAINTEXT://:9092", &default_map()).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].host, "");
        assert_eq!(l[0].port, 9092);
        assert_eq!(l[0].bind_address(), "0.0.0.0:9092");
        assert!(l[0].is_wildcard_host());
    }

    #[test]
    fn ipv6_and_named_listeners_parse_with_protocol_from_map() {
        let mut map = default_map();
        map.insert("INTERNAL".into(), SecurityProtocol::Ssl);
        let l = parse_listeners(
            "internal://[::1]:9093 , PLAINTEXT://host.example:9092",
            &map,
        )
        .unwrap();
        assert_eq!(l[0].name, "INTERNAL");
        assert_eq!(l[0].host, "::1");
        assert_eq!(l[0].security_protocol, SecurityProtocol::Ssl);
        assert_eq!(l[0].to_string(), "INTERNAL://[::1]:9093");
        assert_eq!(l[1].bind_address(), "host.example:9092");
    }

    #[test]
    fn listener_without_scheme_or_port_is_rejected() {
        assert!(parse_listeners("localhost:9092", &default_map()).is_err());
        assert!(parse_listeners("PLAINTEXT://localhost", &default_map()).is_err());
        assert!(parse_listeners("PLAINTEXT://localhost:70000", &default_map()).is_err());
        assert!(parse_listeners("PLAINTEXT://local host:9092", &default_map()).is_err());
    }

    #[test]
    fn listener_with_unmapped_name_is_rejected() {
        let err = parse_listeners("EXTERNAL://:9092", &default_map()).unwrap_err();
        assert!(err.contains("EXTERNAL"), "{err}");
    }

    #[test]
    fn duplicate_listener_name_or_port_is_rejected() {
        assert!(parse_listeners("PLAINTEXT://:9092,PLAINTEXT://:9093", &default_map()).is_err());
        let same_port = parse_listeners("PLAINTEXT://:9092,SSL://:9092", &default_map()).unwrap();
        assert!(check_distinct_ports(&same_port).is_err());
        let v4_v6 = parse_listeners(
            "PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092",
            &default_map(),
        )
        .unwrap();
        assert!(check_distinct_ports(&v4_v6).is_ok());
    }

    #[test]
    fn protocol_map_rejects_unknown_protocol_and_bad_entry() {
        assert!(parse_security_protocol_map("A:PLAIN").is_err());
        assert!(parse_security_protocol_map("A").is_err());
        let m = parse_security_protocol_map("controller:plaintext").unwrap();
        assert_eq!(m.get("CONTROLLER"), Some(&SecurityProtocol::Plaintext));
    }

    #[test]
    fn quorum_voters_parse_and_reject_duplicates() {
        let v = parse_quorum_voters("1@localhost:9093,2@[::1]:9094").unwrap();
        assert_eq!(
            v[1],
            QuorumVoter {
                id: 2,
                host: "::1".into(),
                port: 9094
            }
        );
        assert!(parse_quorum_voters("1@a:1,1@b:2").is_err());
        assert!(parse_quorum_voters("x@a:1").is_err());
        assert_eq!(
            parse_bootstrap_servers("a:1, b:2").unwrap(),
            vec![("a".to_string(), 1), ("b".to_string(), 2)]
        );
    }
}
