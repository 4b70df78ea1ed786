//! AlterConfigs: replace a topic's, broker's or group's whole dynamic config set; and the one code path
//! IncrementalAlterConfigs shares with it (resolve the resource, compute the new set, validate
//! it as Kafka does, write the difference as ConfigRecords through the metadata quorum and
//! apply it to live partitions).

use std::collections::HashSet;
use std::sync::Arc;

use indexmap::IndexMap;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config;
use crate::error::Error;
use crate::metadata::records::ConfigResourceType;
use crate::server::dispatch::{RequestContext, Versions};

/// v0-v2 (v2 is flexible; no version changes the semantics).
pub const VERSIONS: Versions = Versions::new(0, 2);

/// ConfigResource.Type ids of the resources Sluice has configs for.
pub const TOPIC: i8 = 2;
pub const BROKER: i8 = 4;
pub const GROUP: i8 = 32;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let keys: Vec<(i8, &str)> = request
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.as_str()))
        .collect();
    let duplicated = duplicated_resources(&keys);
    let mut responses = Vec::with_capacity(request.resources.len());
    for (i, resource) in request.resources.iter().enumerate() {
        let result = if duplicated.contains(&i) {
            Err(each_resource_once())
        } else {
            let names = resource.configs.iter().map(|c| c.name.as_str());
            let has_value = resource.configs.iter().map(|c| c.value.is_some());
            match check_names_and_values(names, has_value) {
                Err(e) => Err(e),
                Ok(()) => {
                    // The legacy API replaces the whole set: what is not named is deleted.
                    let replacement: IndexMap<String, String> = resource
                        .configs
                        .iter()
                        .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                        .collect();
                    alter_resource(
                        broker,
                        resource.resource_type,
                        resource.resource_name.as_str(),
                        request.validate_only,
                        |_| Ok(replacement),
                    )
                    .await
                }
            }
        };
        let (error_code, error_message) = error_fields(result);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone()),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

/// Indexes of resources named more than once (Kafka fails each of them).
pub fn duplicated_resources(keys: &[(i8, &str)]) -> HashSet<usize> {
    let mut first: IndexMap<(i8, &str), usize> = IndexMap::new();
    let mut duplicated = HashSet::new();
    for (i, key) in keys.iter().enumerate() {
        if let Some(j) = first.get(key) {
            duplicated.insert(*j);
            duplicated.insert(i);
        } else {
            first.insert(*key, i);
        }
    }
    duplicated
}

pub fn each_resource_once() -> Error {
    Error::InvalidRequest("Each resource must appear at most once.".into())
}

/// Kafka's preprocessing of both alter APIs: no key twice, and no null value where one is
/// needed (`has_value` is false for a null where one is needed; DELETE needs none).
pub fn check_names_and_values<'a>(
    names: impl Iterator<Item = &'a str>,
    has_value: impl Iterator<Item = bool>,
) -> Result<(), Error> {
    let names: Vec<&str> = names.collect();
    let mut seen = HashSet::new();
    if !names.iter().all(|n| seen.insert(*n)) {
        return Err(Error::InvalidRequest(
            "Error due to duplicate config keys".into(),
        ));
    }
    let nulls: Vec<&str> = names
        .iter()
        .zip(has_value)
        .filter(|(_, present)| !present)
        .map(|(n, _)| *n)
        .collect();
    if !nulls.is_empty() {
        return Err(Error::InvalidRequest(format!(
            "Null value not supported for : {}",
            nulls.join(", ")
        )));
    }
    Ok(())
}

/// The error code and message of one resource's result; config and request errors carry
/// Kafka's message alone, without the internal error's prefix.
pub fn error_fields(result: Result<(), Error>) -> (i16, Option<StrBytes>) {
    match result {
        Ok(()) => (0, None),
        Err(e) => {
            let message = match &e {
                Error::InvalidConfig(m) | Error::InvalidRequest(m) => m.clone(),
                other => other.to_string(),
            };
            (e.error_code(), Some(StrBytes::from_string(message)))
        }
    }
}

/// Which dynamic config set a resource names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Topic(String),
    /// "" (cluster default) or this broker's id.
    Broker(String),
    /// A consumer group, existing or not (Kafka keeps configs for groups yet to come).
    Group(String),
}

impl Target {
    fn record_type(&self) -> ConfigResourceType {
        match self {
            Target::Topic(_) => ConfigResourceType::Topic,
            Target::Broker(_) => ConfigResourceType::Broker,
            Target::Group(_) => ConfigResourceType::Group,
        }
    }

    fn name(&self) -> &str {
        match self {
            Target::Topic(n) | Target::Broker(n) | Target::Group(n) => n,
        }
    }
}

/// The resource a request names, with Kafka's errors for names it does not serve.
pub fn resolve_target(broker: &Broker, resource_type: i8, name: &str) -> Result<Target, Error> {
    match resource_type {
        TOPIC => Ok(Target::Topic(name.to_string())),
        BROKER if name.is_empty() => Ok(Target::Broker(String::new())),
        BROKER => {
            let id: i32 = name.parse().map_err(|_| {
                Error::InvalidRequest(format!("Node id must be an integer, but it is: {name}"))
            })?;
            if id != broker.node_id {
                return Err(Error::InvalidRequest(format!(
                    "Unexpected broker id, expected {}, but received {name}",
                    broker.node_id
                )));
            }
            Ok(Target::Broker(name.to_string()))
        }
        GROUP if name.is_empty() => Err(Error::InvalidRequest(
            "Group name must not be empty".to_string(),
        )),
        GROUP => Ok(Target::Group(name.to_string())),
        other => Err(Error::InvalidRequest(format!(
            "Unknown resource type {other}"
        ))),
    }
}

/// The dynamic config set a target has now (empty when none, or for a missing topic).
pub fn current_configs(broker: &Broker, target: &Target) -> IndexMap<String, String> {
    let image = broker.image();
    match target {
        Target::Topic(name) => image.topic(name).map(|t| t.configs.clone()),
        Target::Broker(name) => image.broker_config(name).cloned(),
        Target::Group(name) => image.group_config(name).cloned(),
    }
    .unwrap_or_default()
}

/// The shared alter path: `new_set` turns the resource's current dynamic configs into the
/// wanted ones; the result is validated (topics: INVALID_CONFIG as Kafka's controller; brokers:
/// INVALID_REQUEST as Kafka's `ConfigAdminManager`, KAFKA-13609), then the difference is
/// proposed as ConfigRecords in one atomic batch and applied to live partitions.
pub async fn alter_resource(
    broker: &Arc<Broker>,
    resource_type: i8,
    resource_name: &str,
    validate_only: bool,
    new_set: impl FnOnce(&IndexMap<String, String>) -> Result<IndexMap<String, String>, Error>,
) -> Result<(), Error> {
    let target = resolve_target(broker, resource_type, resource_name)?;
    let current = current_configs(broker, &target);
    let wanted = new_set(&current)?;
    match &target {
        Target::Topic(name) => {
            config::validate_topic_configs(&wanted)?;
            if broker.image().topic(name).is_none() {
                return Err(Error::UnknownTopicOrPartition);
            }
        }
        Target::Broker(name) => validate_broker_configs(broker, name, &wanted)?,
        Target::Group(_) => config::validate_group_configs(&broker.effective_config(), &wanted)
            .map_err(Error::InvalidConfig)?,
    }
    let changes = difference(&current, &wanted);
    if validate_only || changes.is_empty() {
        return Ok(());
    }
    broker
        .metadata
        .set_configs(target.record_type(), target.name(), changes)
        .await?;
    tracing::info!(resource = ?target.record_type(), name = target.name(), "dynamic configs altered");
    broker.apply_dynamic_configs();
    Ok(())
}

/// Kafka's `DynamicBrokerConfig.validateConfigs`: only dynamic keys, and values the broker
/// config accepts together with the other dynamic level and the static config.
fn validate_broker_configs(
    broker: &Broker,
    resource_name: &str,
    wanted: &IndexMap<String, String>,
) -> Result<(), Error> {
    let mut refused: Vec<&str> = wanted
        .keys()
        .map(String::as_str)
        .filter(|k| !config::is_dynamic_broker_config(k))
        .collect();
    if !refused.is_empty() {
        refused.sort_unstable();
        return Err(Error::InvalidRequest(format!(
            "Cannot update these configs dynamically: Set({})",
            refused.join(", ")
        )));
    }
    if resource_name.is_empty() {
        let mut per_broker: Vec<&str> = wanted
            .keys()
            .map(String::as_str)
            .filter(|k| config::is_per_broker_config(k))
            .collect();
        if !per_broker.is_empty() {
            per_broker.sort_unstable();
            return Err(Error::InvalidRequest(format!(
                "Cannot update these configs at default cluster level, broker id must be \
                 specified: {}",
                per_broker.join(",")
            )));
        }
    }
    let image = broker.image();
    let node = broker.node_id.to_string();
    let (cluster_default, per_broker) = if resource_name.is_empty() {
        (Some(wanted), image.broker_config(&node))
    } else {
        (image.broker_config(""), Some(wanted))
    };
    broker
        .config
        .with_dynamic(cluster_default, per_broker)
        .map(|_| ())
        .map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// ConfigRecord changes that turn `current` into `wanted`: sets for new or changed values,
/// deletes for keys no longer present.
fn difference(
    current: &IndexMap<String, String>,
    wanted: &IndexMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let deleted = current
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| (k.clone(), None));
    let set = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())));
    deleted.chain(set).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::string_map as map;

    #[test]
    fn difference_sets_changed_and_deletes_missing() {
        let current = map(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let wanted = map(&[("b", "2"), ("c", "4"), ("d", "5")]);
        let d = difference(&current, &wanted);
        assert_eq!(
            d,
            vec![
                ("a".to_string(), None),
                ("c".to_string(), Some("4".to_string())),
                ("d".to_string(), Some("5".to_string())),
            ]
        );
    }

    #[test]
    fn duplicated_resources_fail_both_entries() {
        let d = duplicated_resources(&[(2, "t"), (4, ""), (2, "t")]);
        assert_eq!(d, HashSet::from([0, 2]));
    }

    #[test]
    fn duplicate_keys_and_nulls_are_invalid_requests() {
        let e = check_names_and_values(["a", "a"].into_iter(), [true, true].into_iter());
        assert_eq!(e.unwrap_err().error_code(), 42);
        let e = check_names_and_values(["a", "b"].into_iter(), [true, false].into_iter());
        let (code, message) = error_fields(e);
        assert_eq!(code, 42);
        assert_eq!(message.as_deref(), Some("Null value not supported for : b"));
    }
}
