//! `[[events]]`: what happens to the world, and when. An event is read as written (`at_day`,
//! `kind` and every key some kind takes) and typed once, while the file is deserialised, into an
//! [`EventSpec`] holding an [`EventKind`]: a `kind` that does not exist, a key the kind does not
//! take or a key it needs that is missing is refused there, as an [`EventError`] that the loader
//! places at the event's line. Consumers match on [`EventKind`], never on the kind's name.

use super::validate::error_at;
use crate::located::{LocatedError, SourceDoc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The event kinds and the keys each takes besides `at_day` and `kind`.
pub const EVENT_KINDS: &[(&str, &[&str])] = &[
    ("schema_change", &["netuid", "endpoint", "version"]),
    ("outage", &["netuid", "hours"]),
    ("new_subnet", &["netuid"]),
    ("deprecation", &["netuid"]),
    ("price_change", &["netuid", "multiplier"]),
    ("latency_change", &["netuid", "multiplier"]),
    ("validator_down", &["validators", "hours"]),
    ("miner_churn", &["group", "leave", "join"]),
    ("attack_stop", &["group"]),
    ("set_tempo", &["tempo"]),
    ("trigger_epoch", &[]),
    ("reset_bonds", &["group"]),
];

/// One `[[events]]` entry, typed: when, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawEvent")]
pub struct EventSpec {
    /// When, days from the beginning.
    pub at_day: f64,
    /// What happens (written as `kind` and the keys that kind takes).
    #[serde(flatten)]
    pub kind: EventKind,
}

/// The kinds of scenario event, typed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A subnet switches an endpoint's output schema to another version.
    SchemaChange {
        /// Subnet.
        netuid: u16,
        /// Endpoint name.
        endpoint: String,
        /// Schema version to switch to.
        version: u32,
    },
    /// A subnet stops answering for a while.
    Outage {
        /// Subnet.
        netuid: u16,
        /// Duration, hours.
        hours: f64,
    },
    /// An unlisted subnet starts serving.
    NewSubnet {
        /// Subnet.
        netuid: u16,
    },
    /// A subnet shuts down for good.
    Deprecation {
        /// Subnet.
        netuid: u16,
    },
    /// A subnet's price changes.
    PriceChange {
        /// Subnet.
        netuid: u16,
        /// Multiplier on the current price.
        multiplier: f64,
    },
    /// A subnet's latency changes (e.g. it scales down).
    LatencyChange {
        /// Subnet.
        netuid: u16,
        /// Multiplier on the current latency.
        multiplier: f64,
    },
    /// Validators go offline for a while.
    ValidatorDown {
        /// Validator indices (in file order across groups).
        validators: Vec<u32>,
        /// Duration, hours.
        hours: f64,
    },
    /// Miners of a group leave and/or new ones join.
    MinerChurn {
        /// Group label.
        group: String,
        /// How many leave (deregister).
        leave: u32,
        /// How many join (register fresh identities).
        join: u32,
    },
    /// A group stops attacking and behaves honestly from now on.
    AttackStop {
        /// Group label.
        group: String,
    },
    /// The subnet owner's `sudo_set_tempo` (spec 459: 360..=50400, at most every 360 blocks,
    /// not in the freeze window; `LastEpochBlock` restarts at the block, though the safety net
    /// still runs the next epoch `tempo + 1` blocks after the last). Refused ones are reported.
    SetTempo {
        /// The new tempo, blocks.
        tempo: u16,
    },
    /// The subnet owner's `trigger_epoch` (spec 459): the epoch runs `admin_freeze_window`
    /// blocks later. Refused ones are reported.
    TriggerEpoch,
    /// Every miner of a group commits metadata carrying `ResetBondsFlag`: with `[chain]
    /// bonds_reset`, validators' bonds to them are stripped.
    ResetBonds {
        /// Group label.
        group: String,
    },
}

impl EventKind {
    /// The kind's name in a scenario file (`schema_change`, `outage`, …; see [`EVENT_KINDS`]).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::SchemaChange { .. } => "schema_change",
            EventKind::Outage { .. } => "outage",
            EventKind::NewSubnet { .. } => "new_subnet",
            EventKind::Deprecation { .. } => "deprecation",
            EventKind::PriceChange { .. } => "price_change",
            EventKind::LatencyChange { .. } => "latency_change",
            EventKind::ValidatorDown { .. } => "validator_down",
            EventKind::MinerChurn { .. } => "miner_churn",
            EventKind::AttackStop { .. } => "attack_stop",
            EventKind::SetTempo { .. } => "set_tempo",
            EventKind::TriggerEpoch => "trigger_epoch",
            EventKind::ResetBonds { .. } => "reset_bonds",
        }
    }

    /// The subnet the event happens to, for the kinds that name one.
    pub fn netuid(&self) -> Option<u16> {
        match self {
            EventKind::SchemaChange { netuid, .. }
            | EventKind::Outage { netuid, .. }
            | EventKind::NewSubnet { netuid }
            | EventKind::Deprecation { netuid }
            | EventKind::PriceChange { netuid, .. }
            | EventKind::LatencyChange { netuid, .. } => Some(*netuid),
            EventKind::ValidatorDown { .. }
            | EventKind::MinerChurn { .. }
            | EventKind::AttackStop { .. }
            | EventKind::SetTempo { .. }
            | EventKind::TriggerEpoch
            | EventKind::ResetBonds { .. } => None,
        }
    }
}

/// Why an event's keys do not fit its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    /// The key at fault: `kind`, a key the kind does not take, or a key it needs.
    pub key: String,
    /// What the event must hold.
    pub expected: String,
    /// What it holds (`nothing` when `key` is missing).
    pub found: String,
    /// Whether `key` is missing, so that the error belongs to the event's table rather than to
    /// a line of its own.
    pub missing: bool,
}

impl EventError {
    /// The key path the error points at in a file, for the event at `index` of `[[events]]`.
    pub fn path(&self, index: usize) -> String {
        if self.missing {
            format!("events[{index}]")
        } else {
            format!("events[{index}].{}", self.key)
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.missing {
            write!(f, "expected {}, found nothing", self.expected)
        } else {
            write!(
                f,
                "`{}`: expected {}, found {}",
                self.key, self.expected, self.found
            )
        }
    }
}

impl std::error::Error for EventError {}

/// An `[[events]]` entry as written: `at_day`, `kind` and every key any kind takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    /// When, days from the beginning.
    at_day: f64,
    /// Which kind of event.
    kind: String,
    /// Subnet (`schema_change`, `outage`, `new_subnet`, `deprecation`, `price_change`,
    /// `latency_change`).
    #[serde(default)]
    netuid: Option<u16>,
    /// Endpoint name (`schema_change`).
    #[serde(default)]
    endpoint: Option<String>,
    /// Schema version (`schema_change`).
    #[serde(default)]
    version: Option<u32>,
    /// Duration, hours (`outage`, `validator_down`).
    #[serde(default)]
    hours: Option<f64>,
    /// Multiplier (`price_change`, `latency_change`).
    #[serde(default)]
    multiplier: Option<f64>,
    /// Validator indices in file order (`validator_down`).
    #[serde(default)]
    validators: Option<Vec<u32>>,
    /// Miner group label (`miner_churn`, `attack_stop`).
    #[serde(default)]
    group: Option<String>,
    /// Miners leaving (`miner_churn`).
    #[serde(default)]
    leave: Option<u32>,
    /// Miners joining (`miner_churn`).
    #[serde(default)]
    join: Option<u32>,
    /// The new tempo (`set_tempo`).
    #[serde(default)]
    tempo: Option<u16>,
}

impl RawEvent {
    /// Which keys are set, in the order of the struct's fields (the order errors name them in).
    fn present(&self) -> Vec<&'static str> {
        let flags = [
            ("netuid", self.netuid.is_some()),
            ("endpoint", self.endpoint.is_some()),
            ("version", self.version.is_some()),
            ("hours", self.hours.is_some()),
            ("multiplier", self.multiplier.is_some()),
            ("validators", self.validators.is_some()),
            ("group", self.group.is_some()),
            ("leave", self.leave.is_some()),
            ("join", self.join.is_some()),
            ("tempo", self.tempo.is_some()),
        ];
        flags
            .into_iter()
            .filter_map(|(k, set)| set.then_some(k))
            .collect()
    }
}

impl TryFrom<RawEvent> for EventSpec {
    type Error = EventError;

    fn try_from(raw: RawEvent) -> Result<Self, EventError> {
        let unknown = || {
            let names: Vec<&str> = EVENT_KINDS.iter().map(|(k, _)| *k).collect();
            EventError {
                key: "kind".into(),
                expected: format!("one of {}", names.join(", ")),
                found: format!("{:?}", raw.kind),
                missing: false,
            }
        };
        let Some((_, allowed)) = EVENT_KINDS.iter().find(|(k, _)| *k == raw.kind) else {
            return Err(unknown());
        };
        if let Some(extra) = raw.present().into_iter().find(|k| !allowed.contains(k)) {
            return Err(EventError {
                key: extra.into(),
                expected: format!("only {} with kind = {:?}", allowed.join(", "), raw.kind),
                found: format!("`{extra}`"),
                missing: false,
            });
        }
        let need = |key: &str| EventError {
            key: key.to_string(),
            expected: format!("`{key}` with kind = {:?}", raw.kind),
            found: "nothing".to_string(),
            missing: true,
        };
        let netuid = || raw.netuid.ok_or_else(|| need("netuid"));
        let hours = || raw.hours.ok_or_else(|| need("hours"));
        let multiplier = || raw.multiplier.ok_or_else(|| need("multiplier"));
        let group = || raw.group.clone().ok_or_else(|| need("group"));
        let kind = match raw.kind.as_str() {
            "schema_change" => EventKind::SchemaChange {
                netuid: netuid()?,
                endpoint: raw.endpoint.clone().ok_or_else(|| need("endpoint"))?,
                version: raw.version.ok_or_else(|| need("version"))?,
            },
            "outage" => EventKind::Outage {
                netuid: netuid()?,
                hours: hours()?,
            },
            "new_subnet" => EventKind::NewSubnet { netuid: netuid()? },
            "deprecation" => EventKind::Deprecation { netuid: netuid()? },
            "price_change" => EventKind::PriceChange {
                netuid: netuid()?,
                multiplier: multiplier()?,
            },
            "latency_change" => EventKind::LatencyChange {
                netuid: netuid()?,
                multiplier: multiplier()?,
            },
            "validator_down" => EventKind::ValidatorDown {
                validators: raw.validators.clone().ok_or_else(|| need("validators"))?,
                hours: hours()?,
            },
            "miner_churn" => EventKind::MinerChurn {
                group: group()?,
                leave: raw.leave.unwrap_or(0),
                join: raw.join.unwrap_or(0),
            },
            "attack_stop" => EventKind::AttackStop { group: group()? },
            "set_tempo" => EventKind::SetTempo {
                tempo: raw.tempo.ok_or_else(|| need("tempo"))?,
            },
            "trigger_epoch" => EventKind::TriggerEpoch,
            "reset_bonds" => EventKind::ResetBonds { group: group()? },
            _ => return Err(unknown()),
        };
        Ok(EventSpec {
            at_day: raw.at_day,
            kind,
        })
    }
}

/// The located error for `err`, a failure to deserialise `table` (the file, or one sweep point
/// of it), when it came from typing an event; `None` when it came from anywhere else. Serde
/// carries only the [`EventError`]'s message, so the event is found again: the first one in file
/// order that does not type, as serde stops at it. `context` names the sweep point, if any.
pub(super) fn conversion_error(
    doc: &SourceDoc,
    table: &toml::Table,
    err: &toml::de::Error,
    context: &str,
) -> Option<Box<LocatedError>> {
    let toml::Value::Array(events) = table.get("events")? else {
        return None;
    };
    for (i, value) in events.iter().enumerate() {
        // An event serde cannot even read stopped it before any later event was typed.
        let raw: RawEvent = value.clone().try_into().ok()?;
        if let Err(e) = EventSpec::try_from(raw) {
            return (e.to_string() == err.message())
                .then(|| error_at(doc, &e.path(i), &e.expected, &e.found, context));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{MINIMAL, error, load};
    use super::*;

    /// The events of MINIMAL followed by `events` (written from line 12 on).
    fn events(events: &str) -> Vec<EventSpec> {
        load(&format!("{MINIMAL}{events}\n"))
            .unwrap()
            .points
            .remove(0)
            .spec
            .events
    }

    #[test]
    fn each_kind_is_typed_once_from_its_keys() {
        let text = "\
[[events]]\nat_day = 0.5\nkind = \"schema_change\"\nnetuid = 22\nendpoint = \"web_search\"\nversion = 2\n\
[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 13\nhours = 8\n\
[[events]]\nat_day = 1\nkind = \"new_subnet\"\nnetuid = 7\n\
[[events]]\nat_day = 2\nkind = \"deprecation\"\nnetuid = 4\n\
[[events]]\nat_day = 2\nkind = \"price_change\"\nnetuid = 1\nmultiplier = 1.5\n\
[[events]]\nat_day = 3\nkind = \"latency_change\"\nnetuid = 1\nmultiplier = 3\n\
[[events]]\nat_day = 3\nkind = \"validator_down\"\nvalidators = [0, 1]\nhours = 2.5\n\
[[events]]\nat_day = 4\nkind = \"miner_churn\"\ngroup = \"honest\"\nleave = 2\njoin = 3\n\
[[events]]\nat_day = 4\nkind = \"miner_churn\"\ngroup = \"honest\"\njoin = 1\n\
[[events]]\nat_day = 5\nkind = \"attack_stop\"\ngroup = \"honest\"\n\
[[events]]\nat_day = 5\nkind = \"set_tempo\"\ntempo = 720\n\
[[events]]\nat_day = 6\nkind = \"trigger_epoch\"\n\
[[events]]\nat_day = 6\nkind = \"reset_bonds\"\ngroup = \"honest\"";
        let got = events(text);
        let want = [
            (
                0.5,
                EventKind::SchemaChange {
                    netuid: 22,
                    endpoint: "web_search".into(),
                    version: 2,
                },
            ),
            (
                1.0,
                EventKind::Outage {
                    netuid: 13,
                    hours: 8.0,
                },
            ),
            (1.0, EventKind::NewSubnet { netuid: 7 }),
            (2.0, EventKind::Deprecation { netuid: 4 }),
            (
                2.0,
                EventKind::PriceChange {
                    netuid: 1,
                    multiplier: 1.5,
                },
            ),
            (
                3.0,
                EventKind::LatencyChange {
                    netuid: 1,
                    multiplier: 3.0,
                },
            ),
            (
                3.0,
                EventKind::ValidatorDown {
                    validators: vec![0, 1],
                    hours: 2.5,
                },
            ),
            (
                4.0,
                EventKind::MinerChurn {
                    group: "honest".into(),
                    leave: 2,
                    join: 3,
                },
            ),
            // `leave` and `join` default to 0.
            (
                4.0,
                EventKind::MinerChurn {
                    group: "honest".into(),
                    leave: 0,
                    join: 1,
                },
            ),
            (
                5.0,
                EventKind::AttackStop {
                    group: "honest".into(),
                },
            ),
            (5.0, EventKind::SetTempo { tempo: 720 }),
            (6.0, EventKind::TriggerEpoch),
            (
                6.0,
                EventKind::ResetBonds {
                    group: "honest".into(),
                },
            ),
        ];
        let want: Vec<EventSpec> = want
            .into_iter()
            .map(|(at_day, kind)| EventSpec { at_day, kind })
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn names_and_netuids_follow_the_kind_table() {
        let text: String = EVENT_KINDS
            .iter()
            .map(|(name, keys)| {
                let values: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        let v = match *k {
                            "endpoint" => "\"web_search\"",
                            "validators" => "[0]",
                            "group" => "\"honest\"",
                            _ => "1",
                        };
                        format!("{k} = {v}\n")
                    })
                    .collect();
                format!(
                    "[[events]]\nat_day = 1\nkind = \"{name}\"\n{}",
                    values.concat()
                )
            })
            .collect();
        let got = events(&text);
        assert_eq!(got.len(), EVENT_KINDS.len());
        for (e, (name, keys)) in got.iter().zip(EVENT_KINDS) {
            assert_eq!(e.kind.name(), *name);
            assert_eq!(
                e.kind.netuid(),
                keys.contains(&"netuid").then_some(1),
                "{name}"
            );
        }
    }

    #[test]
    fn a_wrong_kind_or_key_is_located_at_the_event() {
        let kinds = "schema_change, outage, new_subnet, deprecation, price_change, latency_change, validator_down, miner_churn, attack_stop, set_tempo, trigger_epoch, reset_bonds";
        let cases = [
            (
                format!("{MINIMAL}[[events]]\nat_day = 1\nkind = \"eclipse\"\n"),
                format!("t.toml:14:8: `events[0].kind`: expected one of {kinds}, found \"eclipse\""),
            ),
            // A key the kind does not take is named at its own line, wherever `kind` is.
            (
                format!(
                    "{MINIMAL}[[events]]\nat_day = 1\ngroup = \"honest\"\nnetuid = 1\nkind = \"deprecation\"\n"
                ),
                "t.toml:14:9: `events[0].group`: expected only netuid with kind = \"deprecation\", found `group`".to_string(),
            ),
            // A missing key points at the event's table.
            (
                format!("{MINIMAL}[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 1\n"),
                "t.toml:12:1: `events[0]`: expected `hours` with kind = \"outage\", found nothing".to_string(),
            ),
            (
                format!(
                    "{MINIMAL}[[events]]\nat_day = 1\nkind = \"deprecation\"\nnetuid = 1\n\n[[events]]\nat_day = 2\nkind = \"validator_down\"\nhours = 1\n"
                ),
                "t.toml:17:1: `events[1]`: expected `validators` with kind = \"validator_down\", found nothing".to_string(),
            ),
            // Inline tables too.
            (
                format!(
                    "events = [{{ at_day = 1, kind = \"new_subnet\" }}]\n{}",
                    MINIMAL.replace("# Second line.\n", "")
                ),
                "t.toml:1:11: `events[0]`: expected `netuid` with kind = \"new_subnet\", found nothing".to_string(),
            ),
            // What serde refuses before the kind is known reads as before.
            (
                format!("{MINIMAL}[[events]]\nat_day = 1\nnetuid = 1\n"),
                "t.toml:12:1: `events[0]`: expected key `kind`, found nothing".to_string(),
            ),
            (
                format!("{MINIMAL}[[events]]\nat_day = 1\nkind = 3\n"),
                "t.toml:14:8: `events[0].kind`: expected a string, found integer `3`".to_string(),
            ),
            // Serde stops at the first event it cannot read, so a later event's kind is not
            // blamed for it.
            (
                format!(
                    "{MINIMAL}[[events]]\nat_day = 1\nkind = \"outage\"\nnetuid = 1\nhours = \"long\"\n[[events]]\nat_day = 1\nkind = \"eclipse\"\n"
                ),
                "t.toml:16:9: `events[0].hours`: expected f64, found string \"long\"".to_string(),
            ),
            // A swept kind is typed at each point, and named with it.
            (
                format!(
                    "{MINIMAL}[[events]]\nat_day = 1\nkind = \"deprecation\"\nnetuid = 1\n[sweep]\n\"events[0].kind\" = [\"deprecation\", \"outage\"]\n"
                ),
                "t.toml:12:1: `events[0]`: expected `hours` with kind = \"outage\", found nothing (at sweep point events[0].kind = \"outage\")".to_string(),
            ),
        ];
        for (text, want) in &cases {
            assert_eq!(&error(text), want, "in:\n{text}");
        }
    }

    #[test]
    fn event_errors_read_alone_where_no_file_places_them() {
        // `orchestra-sim tune` checks swept keys without a file position: the message alone.
        let err =
            toml::from_str::<EventSpec>("at_day = 1\nkind = \"outage\"\nnetuid = 1\n").unwrap_err();
        assert_eq!(
            err.message(),
            "expected `hours` with kind = \"outage\", found nothing"
        );
        let err = toml::from_str::<EventSpec>(
            "at_day = 1\nkind = \"outage\"\nnetuid = 1\nhours = 1\njoin = 2\n",
        )
        .unwrap_err();
        assert_eq!(
            err.message(),
            "`join`: expected only netuid, hours with kind = \"outage\", found `join`"
        );
    }

    #[test]
    fn an_event_serialises_as_it_is_written() {
        let e = EventSpec {
            at_day: 1.5,
            kind: EventKind::SchemaChange {
                netuid: 22,
                endpoint: "web_search".into(),
                version: 2,
            },
        };
        let value = toml::Value::try_from(&e).unwrap();
        let written = toml::Value::Table(
            toml::from_str(
                "at_day = 1.5\nkind = \"schema_change\"\nnetuid = 22\nendpoint = \"web_search\"\nversion = 2\n",
            )
            .unwrap(),
        );
        assert_eq!(value, written);
        assert_eq!(value.try_into::<EventSpec>().unwrap(), e);
    }
}
