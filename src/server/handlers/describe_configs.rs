//! DescribeConfigs: the configs of a topic, of a broker ("" = the cluster-wide dynamic
//! defaults, "<node.id>" = every config of this broker) or of a consumer group (KIP-848), with
//! Kafka's config sources, synonyms (KIP-226), types and documentation (KIP-525).

use std::sync::Arc;

use indexmap::IndexMap;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::config::{self, Config, ConfigSource};
use crate::error::Error;
use crate::metadata::image::{validate_topic_name, MetadataImage};
use crate::server::dispatch::{RequestContext, Versions};
use crate::server::handlers::alter_configs::{error_fields, resolve_target, Target};

/// v1-v4 (Kafka 4 removed v0). v1 config sources and synonyms, v3 types and documentation,
/// v4 flexible.
pub const VERSIONS: Versions = Versions::new(1, 4);

/// DescribeConfigsResponse ConfigSource ids.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const DEFAULT_CONFIG: i8 = 5;
const GROUP_CONFIG: i8 = 8;

/// Bound on the configs one response describes. A request of a few bytes per resource could
/// otherwise ask for hundreds of configs each (a broker resource) and make the response
/// thousands of times its size; this allows about 7500 topics or 800 broker resources.
/// Resources past it get INVALID_REQUEST (Kafka has no such bound).
pub const DESCRIBED_CONFIGS_MAX: usize = 250_000;

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let image = broker.image();
    let levels = Levels::new(broker, &image);
    let options = Options {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
    };
    let mut described = 0usize;
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = if described >= DESCRIBED_CONFIGS_MAX {
                Err(Error::InvalidRequest(format!(
                    "DescribeConfigs answers at most {DESCRIBED_CONFIGS_MAX} configs per request; \
                     ask for the remaining resources in another request"
                )))
            } else {
                describe(broker, &image, &levels, resource, options)
            };
            described += result.as_ref().map_or(0, Vec::len);
            let (error_code, error_message, configs) = match result {
                Ok(configs) => (0, None, configs),
                Err(e) => {
                    let (code, message) = error_fields(Err(e));
                    // UNKNOWN_TOPIC_OR_PARTITION carries no message in Kafka's answer.
                    let message = if code == 3 { None } else { message };
                    (code, message, Vec::new())
                }
            };
            DescribeConfigsResult::default()
                .with_error_code(error_code)
                .with_error_message(error_message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

#[derive(Clone, Copy)]
struct Options {
    synonyms: bool,
    documentation: bool,
}

fn describe(
    broker: &Broker,
    image: &MetadataImage,
    levels: &Levels<'_>,
    resource: &DescribeConfigsResource,
    options: Options,
) -> Result<Vec<DescribeConfigsResourceResult>, Error> {
    let wanted = |name: &str| match &resource.configuration_keys {
        Some(keys) if !keys.is_empty() => keys.iter().any(|k| k.as_str() == name),
        _ => true,
    };
    let name = resource.resource_name.as_str();
    if resource.resource_type == crate::server::handlers::alter_configs::TOPIC {
        validate_topic_name(name).map_err(Error::InvalidTopic)?;
    }
    let entries = match resolve_target(broker, resource.resource_type, name)? {
        Target::Topic(topic) => {
            let topic = image.topic(&topic).ok_or(Error::UnknownTopicOrPartition)?;
            config::topic_config_names()
                .filter(|n| wanted(n))
                .map(|n| levels.topic_entry(n, &topic.configs).into_result(options))
                .collect()
        }
        Target::Group(group) => {
            let overrides = image.group_config(&group);
            config::group_config_names()
                .filter(|n| wanted(n))
                .map(|n| levels.group_entry(n, overrides).into_result(options))
                .collect()
        }
        Target::Broker(id) if id.is_empty() => levels
            .cluster_default
            .into_iter()
            .flatten()
            .filter(|(n, _)| wanted(n))
            .map(|(n, _)| levels.cluster_default_entry(n).into_result(options))
            .collect(),
        Target::Broker(_) => {
            // Every config this broker resolved, then the dynamic ones it does not (yet)
            // resolve itself, so each key AlterConfigs accepts can be described.
            let entries = levels.effective.entries();
            let unresolved =
                config::dynamic_broker_config_names().filter(|n| !entries.contains_key(*n));
            let mut names: Vec<&str> = entries.keys().map(String::as_str).collect();
            for n in unresolved {
                names.push(n);
            }
            names
                .into_iter()
                .filter(|n| wanted(n))
                .map(|n| levels.broker_entry(n).into_result(options))
                .collect()
        }
    };
    Ok(entries)
}

/// One described config before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub read_only: bool,
    pub sensitive: bool,
    pub synonyms: Vec<(String, Option<String>, i8)>,
    pub topic: bool,
}

impl Described {
    fn into_result(self, options: Options) -> DescribeConfigsResourceResult {
        let synonyms = if options.synonyms {
            self.synonyms
                .iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(name.clone()))
                        .with_value(value.clone().map(StrBytes::from_string))
                        .with_source(*source)
                })
                .collect()
        } else {
            Vec::new()
        };
        let documentation = if options.documentation {
            config::config_documentation(&self.name, self.topic).map(StrBytes::from_string)
        } else {
            None
        };
        DescribeConfigsResourceResult::default()
            .with_config_type(config::config_type(&self.name, self.topic).id())
            .with_name(StrBytes::from_string(self.name))
            .with_value(self.value.map(StrBytes::from_string))
            .with_read_only(self.read_only)
            .with_config_source(self.source)
            .with_is_sensitive(self.sensitive)
            .with_synonyms(synonyms)
            .with_documentation(documentation)
    }
}

/// Where a broker key can be set, most specific first, as DescribeConfigs reports them.
pub struct Levels<'a> {
    per_broker: Option<&'a IndexMap<String, String>>,
    cluster_default: Option<&'a IndexMap<String, String>>,
    static_config: &'a Config,
    effective: Arc<Config>,
}

impl<'a> Levels<'a> {
    pub fn new(broker: &'a Broker, image: &'a MetadataImage) -> Levels<'a> {
        Levels {
            per_broker: image.broker_config(&broker.node_id.to_string()),
            cluster_default: image.broker_config(""),
            static_config: &broker.config,
            effective: broker.effective_config(),
        }
    }

    /// Kafka's `ConfigHelper.configSynonyms`: each level in turn (per-broker dynamic, cluster
    /// dynamic, static, default), and within a level the keys in precedence order.
    fn synonyms(&self, keys: &[&str]) -> Vec<(String, Option<String>, i8)> {
        let mut out = Vec::new();
        let dynamic = [
            (self.per_broker, DYNAMIC_BROKER_CONFIG),
            (self.cluster_default, DYNAMIC_DEFAULT_BROKER_CONFIG),
        ];
        for (configs, source) in dynamic {
            for key in keys {
                if let Some(v) = configs.and_then(|c| c.get(*key)) {
                    out.push((key.to_string(), Some(v.clone()), source));
                }
            }
        }
        for wanted_default in [false, true] {
            for key in keys {
                let Some(entry) = self.static_config.entry(key) else {
                    continue;
                };
                let is_default = entry.source == ConfigSource::Default;
                if is_default == wanted_default && entry.value.is_some() {
                    let source = entry.source.describe_configs_source();
                    out.push((key.to_string(), entry.value.clone(), source));
                }
            }
        }
        for s in &mut out {
            if config::is_sensitive_config(&s.0) {
                s.1 = None;
            }
        }
        out
    }

    /// A topic config: the topic's override, else the broker value that supplies it now.
    pub fn topic_entry(&self, name: &str, topic_configs: &IndexMap<String, String>) -> Described {
        let own = topic_configs.get(name).map(|v| (v, DYNAMIC_TOPIC_CONFIG));
        let default = || self.effective.topic_config_default(name);
        self.overridable_entry(
            name,
            own,
            config::topic_config_synonyms(name),
            default,
            true,
        )
    }

    /// A group config (Kafka's `ConfigHelper.createGroupConfigEntry`): the group's override,
    /// else the broker key that supplies it, with that key's levels as synonyms.
    fn group_entry(&self, name: &str, overrides: Option<&IndexMap<String, String>>) -> Described {
        let own = overrides
            .and_then(|o| o.get(name))
            .map(|v| (v, GROUP_CONFIG));
        let broker_keys: Vec<&str> = config::group_config_broker_key(name).into_iter().collect();
        let default = || {
            let key = broker_keys.first()?;
            self.effective.entry(key)?.value.clone()
        };
        self.overridable_entry(name, own, &broker_keys, default, false)
    }

    /// A config a resource may override (`own`, with its source) over the broker keys that
    /// supply its default; those keys' levels follow as synonyms.
    fn overridable_entry(
        &self,
        name: &str,
        own: Option<(&String, i8)>,
        broker_keys: &[&str],
        default: impl FnOnce() -> Option<String>,
        topic: bool,
    ) -> Described {
        let mut synonyms = Vec::new();
        if let Some((v, source)) = own {
            synonyms.push((name.to_string(), Some(v.clone()), source));
        }
        synonyms.extend(self.synonyms(broker_keys));
        let value = match own {
            Some((v, _)) => Some(v.clone()),
            None => default(),
        };
        Described {
            name: name.to_string(),
            value,
            source: synonyms.first().map_or(DEFAULT_CONFIG, |s| s.2),
            read_only: false,
            sensitive: false,
            synonyms,
            topic,
        }
    }

    /// A config of this broker: its effective value, with the synonyms from its own name on.
    fn broker_entry(&self, name: &str) -> Described {
        let keys = config::broker_config_synonyms(name);
        let mut synonyms: Vec<_> = self
            .synonyms(&keys)
            .into_iter()
            .skip_while(|s| s.0 != name)
            .collect();
        let sensitive = config::is_sensitive_config(name);
        let value = match self.effective.entry(name) {
            Some(e) => e.value.clone(),
            None => {
                let default = config::kafka_dynamic_broker_default(name);
                synonyms.push((name.to_string(), default.clone(), DEFAULT_CONFIG));
                default
            }
        }
        .filter(|_| !sensitive);
        Described {
            name: name.to_string(),
            value,
            source: synonyms.first().map_or(DEFAULT_CONFIG, |s| s.2),
            read_only: !config::is_dynamic_broker_config(name),
            sensitive,
            synonyms,
            topic: false,
        }
    }

    /// A cluster-wide dynamic default: only that level is shown, as Kafka does for "".
    fn cluster_default_entry(&self, name: &str) -> Described {
        let keys = config::broker_config_synonyms(name);
        let synonyms: Vec<_> = self
            .synonyms(&keys)
            .into_iter()
            .filter(|s| s.2 == DYNAMIC_DEFAULT_BROKER_CONFIG)
            .skip_while(|s| s.0 != name)
            .collect();
        let sensitive = config::is_sensitive_config(name);
        let value = self
            .cluster_default
            .and_then(|c| c.get(name).cloned())
            .filter(|_| !sensitive);
        Described {
            name: name.to_string(),
            value,
            source: DYNAMIC_DEFAULT_BROKER_CONFIG,
            read_only: !config::is_dynamic_broker_config(name),
            sensitive,
            synonyms,
            topic: false,
        }
    }
}
