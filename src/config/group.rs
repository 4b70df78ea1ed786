//! Group configs (KIP-848; Kafka 4.0's `GroupConfig`): the settings one consumer group may
//! override with (Incremental)AlterConfigs on a GROUP resource, their broker defaults, and
//! Kafka's checks of them against the broker's `group.consumer.*` bounds.
//!
//! Kafka 4.0 also defines `share.*` group configs; Sluice serves no share groups (KIP-932), so
//! they are unknown names here.

use indexmap::IndexMap;

use super::Config;

/// `group.consumer.migration.policy` (Kafka's ConsumerGroupMigrationPolicy, KIP-848): whether
/// a classic group with members may be upgraded to a consumer group when a consumer-protocol
/// member joins, and a consumer group downgraded when its last consumer-protocol member
/// leaves. Parsed case-insensitively, as Kafka's CaseInsensitiveValidString.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerGroupMigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl ConsumerGroupMigrationPolicy {
    /// Kafka's names, in its order.
    pub const NAMES: [&'static str; 4] = ["bidirectional", "upgrade", "downgrade", "disabled"];

    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => Some(Self::Bidirectional),
            "upgrade" => Some(Self::Upgrade),
            "downgrade" => Some(Self::Downgrade),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bidirectional => "bidirectional",
            Self::Upgrade => "upgrade",
            Self::Downgrade => "downgrade",
            Self::Disabled => "disabled",
        }
    }

    pub fn is_upgrade_enabled(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Upgrade)
    }

    pub fn is_downgrade_enabled(self) -> bool {
        matches!(self, Self::Bidirectional | Self::Downgrade)
    }
}

/// Each group config with the broker key that supplies its default.
const GROUP_CONFIGS: &[(&str, &str)] = &[
    (
        "consumer.session.timeout.ms",
        "group.consumer.session.timeout.ms",
    ),
    (
        "consumer.heartbeat.interval.ms",
        "group.consumer.heartbeat.interval.ms",
    ),
];

pub fn group_config_names() -> impl Iterator<Item = &'static str> {
    GROUP_CONFIGS.iter().map(|(name, _)| *name)
}

/// The broker key whose value a group without an override of `name` follows.
pub fn group_config_broker_key(name: &str) -> Option<&'static str> {
    GROUP_CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, broker)| *broker)
}

/// A consumer group's (session timeout, heartbeat interval) in ms: its own configs over the
/// broker's `defaults`. Stored values were checked when set; one that does not parse is
/// ignored.
pub fn group_timeouts(
    defaults: (i32, i32),
    overrides: Option<&IndexMap<String, String>>,
) -> (i32, i32) {
    let get = |name: &str, default: i32| {
        overrides
            .and_then(|o| o.get(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    };
    (
        get("consumer.session.timeout.ms", defaults.0),
        get("consumer.heartbeat.interval.ms", defaults.1),
    )
}

/// Kafka's `GroupConfig.validate` of a group's whole new config set: known names, INT values
/// of at least 1, within the broker's `group.consumer.min/max.*` bounds, and a session timeout
/// above the heartbeat interval. Unset keys take the broker's current values (Kafka takes its
/// built-in defaults there, which can pass a pair the broker's settings then break).
pub fn validate_group_configs(
    config: &Config,
    wanted: &IndexMap<String, String>,
) -> Result<(), String> {
    for (name, value) in wanted {
        if group_config_broker_key(name).is_none() {
            return Err(format!("Unknown group config name: {name}"));
        }
        let reason = match value.trim().parse::<i32>() {
            Ok(v) if v >= 1 => continue,
            Ok(_) => "Value must be at least 1",
            Err(_) => "Not a number of type INT",
        };
        return Err(format!(
            "Invalid value {value} for configuration {name}: {reason}"
        ));
    }
    let defaults = (
        config.group_consumer_session_timeout_ms,
        config.group_consumer_heartbeat_interval_ms,
    );
    let (session, heartbeat) = group_timeouts(defaults, Some(wanted));
    let bounds = [
        (
            heartbeat < config.group_consumer_min_heartbeat_interval_ms,
            "consumer.heartbeat.interval.ms must be greater than or equal to \
             group.consumer.min.heartbeat.interval.ms",
        ),
        (
            heartbeat > config.group_consumer_max_heartbeat_interval_ms,
            "consumer.heartbeat.interval.ms must be less than or equal to \
             group.consumer.max.heartbeat.interval.ms",
        ),
        (
            session < config.group_consumer_min_session_timeout_ms,
            "consumer.session.timeout.ms must be greater than or equal to \
             group.consumer.min.session.timeout.ms",
        ),
        (
            session > config.group_consumer_max_session_timeout_ms,
            "consumer.session.timeout.ms must be less than or equal to \
             group.consumer.max.session.timeout.ms",
        ),
        (
            session <= heartbeat,
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms",
        ),
    ];
    match bounds.iter().find(|(broken, _)| *broken) {
        Some((_, message)) => Err(message.to_string()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::string_map as map;

    #[test]
    fn each_migration_policy_enables_its_directions() {
        use ConsumerGroupMigrationPolicy as P;
        let table = [
            (P::Bidirectional, true, true),
            (P::Upgrade, true, false),
            (P::Downgrade, false, true),
            (P::Disabled, false, false),
        ];
        for (policy, upgrade, downgrade) in table {
            assert_eq!(policy.is_upgrade_enabled(), upgrade, "{policy:?}");
            assert_eq!(policy.is_downgrade_enabled(), downgrade, "{policy:?}");
            assert_eq!(P::parse(policy.name()), Some(policy));
            assert_eq!(P::parse(&policy.name().to_uppercase()), Some(policy));
        }
        assert_eq!(P::parse("both"), None);
        assert_eq!(P::parse(""), None);
    }

    #[test]
    fn overrides_lay_over_the_broker_values() {
        assert_eq!(group_timeouts((45_000, 5_000), None), (45_000, 5_000));
        let o = map(&[("consumer.session.timeout.ms", "50000")]);
        assert_eq!(group_timeouts((45_000, 5_000), Some(&o)), (50_000, 5_000));
    }

    #[test]
    fn validation_follows_kafka() {
        let c = Config::default();
        assert!(
            validate_group_configs(&c, &map(&[("consumer.session.timeout.ms", "50000")])).is_ok()
        );
        let err = |pairs| validate_group_configs(&c, &map(pairs)).unwrap_err();
        assert_eq!(
            err(&[("share.session.timeout.ms", "1")]),
            "Unknown group config name: share.session.timeout.ms"
        );
        assert!(
            err(&[("consumer.session.timeout.ms", "soon")]).contains("Not a number of type INT")
        );
        assert!(err(&[("consumer.session.timeout.ms", "0")]).contains("at least 1"));
        // Kafka's bounds: session 45000..60000, heartbeat 5000..15000 by default.
        assert!(err(&[("consumer.session.timeout.ms", "70000")]).contains("less than or equal to"));
        assert!(
            err(&[("consumer.heartbeat.interval.ms", "1000")]).contains("greater than or equal to")
        );
        assert!(validate_group_configs(&c, &IndexMap::new()).is_ok());
        let wide = Config {
            group_consumer_max_heartbeat_interval_ms: 60_000,
            ..Config::default()
        };
        let pair = map(&[
            ("consumer.session.timeout.ms", "45000"),
            ("consumer.heartbeat.interval.ms", "45000"),
        ]);
        assert_eq!(
            validate_group_configs(&wide, &pair).unwrap_err(),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }
}
