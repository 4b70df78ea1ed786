//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on single keys of a
//! topic's, broker's or group's dynamic configs, through the alter path AlterConfigs shares.

use std::sync::Arc;

use indexmap::IndexMap;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};

use crate::broker::Broker;
use crate::config::{self, ConfigType};
use crate::error::Error;
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::alter_configs::{
    alter_resource, check_names_and_values, duplicated_resources, each_resource_once, error_fields,
    TOPIC,
};

/// v0-v1 (v1 is flexible).
pub const VERSIONS: Versions = Versions::new(0, 1);

/// AlterConfigOp.OpType ids.
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
            alter(broker, resource, request.validate_only).await
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter(
    broker: &Arc<Broker>,
    resource: &kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Result<(), Error> {
    let names = resource.configs.iter().map(|c| c.name.as_str());
    // DELETE needs no value; every other operation does.
    let has_value = resource
        .configs
        .iter()
        .map(|c| c.value.is_some() || c.config_operation == DELETE);
    check_names_and_values(names, has_value)?;
    if let Some(c) = resource
        .configs
        .iter()
        .find(|c| !(SET..=SUBTRACT).contains(&c.config_operation))
    {
        return Err(Error::InvalidRequest(format!(
            "Unknown operations type {}",
            c.config_operation
        )));
    }
    let topic = resource.resource_type == TOPIC;
    let static_config = broker.config.clone();
    alter_resource(
        broker,
        resource.resource_type,
        resource.resource_name.as_str(),
        validate_only,
        |current| {
            let mut configs = current.clone();
            for op in &resource.configs {
                apply_op(&mut configs, op, topic, &static_config)?;
            }
            Ok(configs)
        },
    )
    .await
}

/// One operation on the config set, as Kafka's `ConfigurationControlManager`: APPEND and
/// SUBTRACT only on LIST configs, starting from the current value or else the default.
fn apply_op(
    configs: &mut IndexMap<String, String>,
    op: &AlterableConfig,
    topic: bool,
    static_config: &config::Config,
) -> Result<(), Error> {
    let name = op.name.to_string();
    let value = op.value.as_deref().unwrap_or("");
    match op.config_operation {
        SET => {
            configs.insert(name, value.to_string());
        }
        DELETE => {
            configs.shift_remove(&name);
        }
        _ => {
            let append = op.config_operation == APPEND;
            if config::config_type(&name, topic) != ConfigType::List {
                return Err(Error::InvalidConfig(format!(
                    "Can't {} to key {name} because its type is not LIST.",
                    if append { "APPEND" } else { "SUBTRACT" }
                )));
            }
            let old = match configs.get(&name) {
                Some(v) => Some(v.clone()),
                None if topic => config::kafka_topic_default(&name).map(str::to_string),
                None => static_config.entry(&name).and_then(|e| e.value.clone()),
            };
            let mut parts: Vec<String> = old
                .unwrap_or_default()
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect();
            for item in value.split(',') {
                if append {
                    if !parts.iter().any(|p| p == item) {
                        parts.push(item.to_string());
                    }
                } else if let Some(i) = parts.iter().position(|p| p == item) {
                    parts.remove(i);
                }
            }
            configs.insert(name, parts.join(","));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    fn op(name: &'static str, operation: i8, value: &'static str) -> AlterableConfig {
        AlterableConfig::default()
            .with_name(StrBytes::from_static_str(name))
            .with_config_operation(operation)
            .with_value(Some(StrBytes::from_static_str(value)))
    }

    #[test]
    fn append_and_subtract_start_from_the_topic_default() {
        let c = config::Config::default();
        let mut configs = IndexMap::new();
        apply_op(
            &mut configs,
            &op("cleanup.policy", APPEND, "compact"),
            true,
            &c,
        )
        .unwrap();
        assert_eq!(configs["cleanup.policy"], "delete,compact");
        apply_op(
            &mut configs,
            &op("cleanup.policy", SUBTRACT, "delete"),
            true,
            &c,
        )
        .unwrap();
        assert_eq!(configs["cleanup.policy"], "compact");
        apply_op(
            &mut configs,
            &op("cleanup.policy", APPEND, "compact"),
            true,
            &c,
        )
        .unwrap();
        assert_eq!(configs["cleanup.policy"], "compact");
    }

    #[test]
    fn append_to_a_non_list_config_is_invalid_config() {
        let c = config::Config::default();
        let mut configs = IndexMap::new();
        let e = apply_op(&mut configs, &op("retention.ms", APPEND, "1"), true, &c).unwrap_err();
        assert_eq!(e.error_code(), 40);
    }

    #[test]
    fn set_then_delete_removes_the_key() {
        let c = config::Config::default();
        let mut configs = IndexMap::new();
        apply_op(&mut configs, &op("retention.ms", SET, "1000"), true, &c).unwrap();
        assert_eq!(configs["retention.ms"], "1000");
        apply_op(&mut configs, &op("retention.ms", DELETE, ""), true, &c).unwrap();
        assert!(configs.is_empty());
    }
}
