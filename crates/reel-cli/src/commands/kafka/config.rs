//! The settings of `reel kafka consume`: klstore's TOML sections (`[kafka]`, `[batcher]`,
//! `[parser]`) merged with the command-line flags, which win. An unknown section or key
//! is an error naming it, so that a typo never silently falls back to a default.

use super::parser::{KeyParser, NumParser, ValueFormat};
use crate::cli::ConsumeArgs;
use crate::error::{CliError, CliResult};
use serde::Deserialize;
use std::time::Duration;

/// Everything the bridge needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Bootstrap brokers.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// The group whose members share the partitions; `None`: this bridge takes them all.
    pub group: Option<String>,
    /// Where a partition without a checkpoint starts.
    pub start: StartAt,
    /// The list key of a record.
    pub key: KeyParser,
    /// Its nonce.
    pub nonce: NumParser,
    /// Its time.
    pub timestamp: NumParser,
    /// How values become items.
    pub value_format: ValueFormat,
    /// Flush a batch at this many records.
    pub batch_items: usize,
    /// Flush a batch at this many value bytes.
    pub batch_bytes: u64,
    /// Flush a batch at least this often.
    pub batch_interval: Duration,
    /// The dead-letter list; `None`: an unreadable record stops the bridge.
    pub dead_letter: Option<String>,
}

/// Where a partition that has no checkpoint yet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// Its oldest retained record.
    Earliest,
    /// Its end: only records produced from now on.
    Latest,
}

/// The config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    kafka: toml::Table,
    #[serde(default)]
    batcher: BatcherSection,
    #[serde(default)]
    parser: ParserSection,
}

/// `[kafka]`, whose keys are Kafka's dotted property names: `group.id = "g"` (a nested
/// table in TOML) and `"group.id" = "g"` mean the same.
#[derive(Debug, Default, PartialEq)]
struct KafkaSection {
    topic: Option<String>,
    group_id: Option<String>,
    bootstrap_servers: Option<String>,
    auto_offset_reset: Option<String>,
}

impl KafkaSection {
    fn from_table(table: toml::Table) -> Result<KafkaSection, String> {
        let mut flat = Vec::new();
        flatten("", table, &mut flat);
        let mut k = KafkaSection::default();
        for (name, value) in flat {
            let slot = match name.as_str() {
                "topic" => &mut k.topic,
                "group.id" => &mut k.group_id,
                "bootstrap.servers" => &mut k.bootstrap_servers,
                "auto.offset.reset" => &mut k.auto_offset_reset,
                // klstore's consumer commits offsets to Kafka; reel stores them with the
                // items instead, so these have nothing left to switch.
                "enable.auto.commit" | "enable.auto.offset.store" => {
                    tracing::warn!("[kafka] {name} is ignored: offsets are stored in reel");
                    continue;
                }
                _ => {
                    return Err(format!(
                        "unknown key `{name}` in [kafka]; expected topic, group.id, bootstrap.servers or auto.offset.reset"
                    ));
                }
            };
            // Bare words (`auto.offset.reset=earliest` in klstore's example) are not TOML;
            // values are strings, or booleans for the ignored switches.
            match value {
                toml::Value::String(s) => *slot = Some(s),
                other => {
                    return Err(format!(
                        "[kafka] {name} must be a string, not a {}",
                        other.type_str()
                    ));
                }
            }
        }
        Ok(k)
    }
}

/// `a = { b = 1 }` as (`a.b`, 1).
fn flatten(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&name, t, out),
            v => out.push((name, v)),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatcherSection {
    batch_flush_interval_millis: Option<u64>,
    batch_flush_item_count_threshold: Option<usize>,
    batch_flush_size_threshold: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParserSection {
    key_parser: Option<String>,
    nonce_parser: Option<String>,
    timestamp_parser: Option<String>,
    value_format: Option<ValueFormat>,
    dead_letter: Option<String>,
    on_error: Option<String>,
}

/// Default batch size in records.
pub const DEFAULT_BATCH_ITEMS: usize = 1000;

impl Settings {
    /// The settings of `args`, with its `--config` file under them.
    pub fn from_args(args: &ConsumeArgs) -> CliResult<Settings> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    CliError::Input(format!("cannot read config file {}: {e}", path.display()))
                })?;
                parse_file(&text)
                    .map_err(|e| CliError::Input(format!("config file {}: {e}", path.display())))?
            }
            None => File::default(),
        };
        let k = KafkaSection::from_table(file.kafka)
            .map_err(|e| CliError::Input(format!("config file {}: {e}", path_of(args))))?;
        let (b, p) = (file.batcher, file.parser);
        let brokers = args
            .brokers
            .clone()
            .or(k.bootstrap_servers)
            .unwrap_or_else(|| "127.0.0.1:9092".into());
        let brokers: Vec<String> = brokers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if brokers.is_empty() {
            return Err(CliError::Input(
                "no broker given (--brokers HOST:PORT)".into(),
            ));
        }
        let topic = args.topic.clone().or(k.topic).ok_or_else(|| {
            CliError::Input("no topic given: --topic T or [kafka] topic in --config".into())
        })?;
        let start = match k.auto_offset_reset.as_deref() {
            None | Some("earliest") => StartAt::Earliest,
            Some("latest") => StartAt::Latest,
            Some(other) => {
                return Err(CliError::Input(format!(
                    "[kafka] auto.offset.reset {other:?}: use earliest or latest"
                )));
            }
        };
        let parse_num = |flag: &Option<String>, file: Option<String>| -> CliResult<NumParser> {
            flag.clone()
                .or(file)
                .map_or(Ok(NumParser::None), |s| s.parse())
        };
        let dead_letter = args.dead_letter.clone().or(p.dead_letter);
        let dead_letter = match args.on_error.as_deref().or(p.on_error.as_deref()) {
            None => dead_letter,
            Some("stop") => None,
            Some("dead-letter") if dead_letter.is_none() => {
                return Err(CliError::Input(
                    "--on-error dead-letter needs --dead-letter KEY (the list for unreadable records)"
                        .into(),
                ));
            }
            Some("dead-letter") => dead_letter,
            Some(other) => {
                return Err(CliError::Input(format!(
                    "on_error {other:?}: use dead-letter or stop"
                )));
            }
        };
        let batch_items = args
            .batch_items
            .or(b.batch_flush_item_count_threshold)
            .unwrap_or(DEFAULT_BATCH_ITEMS);
        if batch_items == 0 {
            return Err(CliError::Input("--batch-items must be at least 1".into()));
        }
        Ok(Settings {
            brokers,
            topic,
            group: args.group.clone().or(k.group_id),
            start,
            key: args
                .key_parser
                .clone()
                .or(p.key_parser)
                .map_or(Ok(KeyParser::RecordPartition), |s| s.parse())?,
            nonce: parse_num(&args.nonce_parser, p.nonce_parser)?,
            timestamp: parse_num(&args.timestamp_parser, p.timestamp_parser)?,
            value_format: args
                .value_format
                .or(p.value_format)
                .unwrap_or(ValueFormat::Auto),
            batch_items,
            batch_bytes: args
                .batch_bytes
                .or(b.batch_flush_size_threshold)
                .unwrap_or(1 << 20),
            batch_interval: args
                .batch_interval
                .or(b.batch_flush_interval_millis.map(Duration::from_millis))
                .unwrap_or(Duration::from_secs(1)),
            dead_letter,
        })
    }
}

fn path_of(args: &ConsumeArgs) -> String {
    args.config
        .as_ref()
        .map_or_else(String::new, |p| p.display().to_string())
}

/// Parses the config file's text; errors name the unknown key or the bad value.
fn parse_file(text: &str) -> Result<File, String> {
    toml::from_str(text).map_err(|e| e.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klstore_sections_parse() {
        let f = parse_file(
            "[kafka]\ntopic=\"t\"\ngroup.id=\"g\"\n\"bootstrap.servers\"=\"h:1\"\nenable.auto.commit=true\n[batcher]\nbatch_flush_item_count_threshold=5\n[parser]\nkey_parser=\"RecordKey\"\n",
        )
        .unwrap();
        assert_eq!(f.batcher.batch_flush_item_count_threshold, Some(5));
        let k = KafkaSection::from_table(f.kafka).unwrap();
        assert_eq!(k.topic.as_deref(), Some("t"));
        assert_eq!(k.group_id.as_deref(), Some("g"));
        assert_eq!(k.bootstrap_servers.as_deref(), Some("h:1"));
    }

    #[test]
    fn an_unknown_key_is_named() {
        let e = parse_file("[parser]\nkeyspace_parser=\"Static(x)\"\n").unwrap_err();
        assert!(e.contains("keyspace_parser"), "{e}");
        let e = parse_file("[s3]\nbucket_name=\"b\"\n").unwrap_err();
        assert!(e.contains("s3"), "{e}");
        let f = parse_file("[kafka]\nsession.timeout.ms=\"5\"\n").unwrap();
        let e = KafkaSection::from_table(f.kafka).unwrap_err();
        assert!(e.contains("`session.timeout.ms`"), "{e}");
    }
}
