//! Call data for every extrinsic we send, built from the runtime shape alone (pure, so the
//! current-runtime encodings are unit-tested without a node).
//!
//! Arguments are named as in the runtime's metadata and encoded as a named composite: subxt
//! matches them to the call's fields by name, so a renamed or reordered argument in a future
//! runtime fails loudly at encode time instead of sending shifted data.

use subxt::dynamic::Value;
use subxt::ext::scale_value::Composite;

use crate::error::ChainError;
use crate::types::{
    AccountId, AxonServe, MechId, NetUid, RuntimeShape, TimelockedCommit, WeightsCommit,
    WeightsReveal, WeightsSubmission,
};

/// A call name and its named arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct CallData {
    /// Call name in `SubtensorModule` (or `Commitments`, `Balances`).
    pub call: &'static str,
    /// Arguments by name, in declaration order.
    pub args: Vec<(&'static str, Value)>,
}

impl CallData {
    /// The argument names, in order.
    pub fn arg_names(&self) -> Vec<&'static str> {
        self.args.iter().map(|(n, _)| *n).collect()
    }

    /// The arguments as subxt call data.
    pub fn composite(&self) -> Composite<()> {
        Composite::named(self.args.iter().map(|(n, v)| ((*n).to_owned(), v.clone())))
    }
}

fn u(x: impl Into<u128>) -> Value {
    Value::u128(x.into())
}

fn u16s(xs: &[u16]) -> Value {
    Value::unnamed_composite(xs.iter().map(|&x| u(x)))
}

/// Whether a request for `mecid` goes to the `*_mechanism_*` call; mechanism 0 on a runtime
/// without mechanisms uses the plain call, any other mechanism there is unsupported.
pub fn uses_mechanism_call(
    shape: &RuntimeShape,
    netuid: NetUid,
    mecid: MechId,
) -> Result<bool, ChainError> {
    if shape.has_mechanisms {
        Ok(true)
    } else if mecid == 0 {
        Ok(false)
    } else {
        Err(ChainError::Unsupported(format!(
            "mechanism {mecid} on netuid {netuid}: runtime spec {} has no mechanisms",
            shape.spec_version
        )))
    }
}

/// `set_weights(netuid, dests, weights, version_key)` or
/// `set_mechanism_weights(netuid, mecid, dests, weights, version_key)`.
pub fn set_weights(shape: &RuntimeShape, w: &WeightsSubmission) -> Result<CallData, ChainError> {
    let mech = uses_mechanism_call(shape, w.netuid, w.mecid)?;
    let mut args = vec![("netuid", u(w.netuid))];
    if mech {
        args.push(("mecid", u(w.mecid)));
    }
    args.extend([
        ("dests", u16s(&w.uids)),
        ("weights", u16s(&w.values)),
        ("version_key", u(w.version_key)),
    ]);
    let call = if mech {
        "set_mechanism_weights"
    } else {
        "set_weights"
    };
    Ok(CallData { call, args })
}

/// `commit_weights(netuid, commit_hash)` or `commit_mechanism_weights(netuid, mecid, commit_hash)`.
pub fn commit_weights(shape: &RuntimeShape, c: &WeightsCommit) -> Result<CallData, ChainError> {
    let mech = uses_mechanism_call(shape, c.netuid, c.mecid)?;
    let mut args = vec![("netuid", u(c.netuid))];
    if mech {
        args.push(("mecid", u(c.mecid)));
    }
    args.push(("commit_hash", Value::from_bytes(c.hash)));
    let call = if mech {
        "commit_mechanism_weights"
    } else {
        "commit_weights"
    };
    Ok(CallData { call, args })
}

/// `commit_timelocked_weights(netuid, commit, reveal_round, commit_reveal_version)` or
/// `commit_timelocked_mechanism_weights(netuid, mecid, commit, reveal_round,
/// commit_reveal_version)` (RaoFoundation/subtensor spec 459 `macros/dispatches.rs`, call 113).
pub fn commit_timelocked_weights(
    shape: &RuntimeShape,
    c: &TimelockedCommit,
) -> Result<CallData, ChainError> {
    let mech = uses_mechanism_call(shape, c.netuid, c.mecid)?;
    let mut args = vec![("netuid", u(c.netuid))];
    if mech {
        args.push(("mecid", u(c.mecid)));
    }
    args.extend([
        ("commit", Value::from_bytes(&c.commit)),
        ("reveal_round", u(c.reveal_round)),
        ("commit_reveal_version", u(c.commit_reveal_version)),
    ]);
    let call = if mech {
        "commit_timelocked_mechanism_weights"
    } else {
        "commit_timelocked_weights"
    };
    Ok(CallData { call, args })
}

/// `reveal_weights(netuid, uids, values, salt, version_key)` or
/// `reveal_mechanism_weights(netuid, mecid, uids, values, salt, version_key)`.
pub fn reveal_weights(shape: &RuntimeShape, r: &WeightsReveal) -> Result<CallData, ChainError> {
    let w = &r.weights;
    let mech = uses_mechanism_call(shape, w.netuid, w.mecid)?;
    let mut args = vec![("netuid", u(w.netuid))];
    if mech {
        args.push(("mecid", u(w.mecid)));
    }
    args.extend([
        ("uids", u16s(&w.uids)),
        ("values", u16s(&w.values)),
        ("salt", u16s(&r.salt)),
        ("version_key", u(w.version_key)),
    ]);
    let call = if mech {
        "reveal_mechanism_weights"
    } else {
        "reveal_weights"
    };
    Ok(CallData { call, args })
}

/// `serve_axon(netuid, version, ip, port, ip_type, protocol, placeholder1, placeholder2)`.
pub fn serve_axon(a: &AxonServe) -> CallData {
    let (ip, ip_type) = a.ip_and_type();
    CallData {
        call: "serve_axon",
        args: vec![
            ("netuid", u(a.netuid)),
            ("version", u(a.version)),
            ("ip", u(ip)),
            ("port", u(a.port)),
            ("ip_type", u(ip_type)),
            ("protocol", u(a.protocol)),
            ("placeholder1", u(0u8)),
            ("placeholder2", u(0u8)),
        ],
    }
}

/// `Commitments.set_commitment(netuid, info)` with `info = CommitmentInfo { fields:
/// [Data::RawN(data)] }`; at most 128 bytes fit in one `Raw` field.
pub fn set_commitment(netuid: NetUid, data: &[u8]) -> Result<CallData, ChainError> {
    if data.len() > 128 {
        return Err(ChainError::Unsupported(format!(
            "commitment of {} bytes: a Raw field holds at most 128",
            data.len()
        )));
    }
    let field = Value::variant(
        format!("Raw{}", data.len()),
        Composite::unnamed([Value::from_bytes(data)]),
    );
    let info = Value::named_composite([("fields", Value::unnamed_composite([field]))]);
    Ok(CallData {
        call: "set_commitment",
        args: vec![("netuid", u(netuid)), ("info", info)],
    })
}

/// `Balances.transfer_keep_alive(dest, value)` with `dest = MultiAddress::Id(account)` (the
/// runtime's lookup source) and `value` the amount in rao.
pub fn transfer_keep_alive(dest: &AccountId, amount_rao: u64) -> CallData {
    CallData {
        call: "transfer_keep_alive",
        args: vec![
            (
                "dest",
                Value::unnamed_variant("Id", [Value::from_bytes(dest)]),
            ),
            ("value", u(amount_rao)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::StakeItem;

    /// The shape of the current finney runtime (mechanisms, CR, Commitments).
    fn current() -> RuntimeShape {
        RuntimeShape {
            spec_name: "node-subtensor".into(),
            spec_version: 425,
            transaction_version: 1,
            subtensor_pallet_index: 7,
            stake_item: StakeItem::TotalHotkeyAlpha,
            has_mechanisms: true,
            indexed_by_netuid_index: true,
            has_commit_reveal: true,
            has_timelocked_commits: true,
            has_commitments: true,
            has_subnet_info_api: true,
            features: Default::default(),
        }
    }

    /// The shape of the spec-103 testfinney genesis runtime in ../shared/chain.
    fn old() -> RuntimeShape {
        RuntimeShape {
            spec_version: 103,
            subtensor_pallet_index: 8,
            stake_item: StakeItem::TotalHotkeyStake,
            has_mechanisms: false,
            indexed_by_netuid_index: false,
            has_commit_reveal: false,
            has_timelocked_commits: false,
            has_commitments: false,
            has_subnet_info_api: false,
            features: Default::default(),
            ..current()
        }
    }

    fn w(mecid: MechId) -> WeightsSubmission {
        WeightsSubmission {
            netuid: 7,
            mecid,
            uids: vec![1, 2],
            values: vec![65_535, 10],
            version_key: 9,
        }
    }

    // Argument names and order below are those of the current runtime's metadata, as listed in
    // the Python SDK's generated calls (bittensor 11.3.0, bittensor/_generated/calls.py).

    #[test]
    fn set_weights_current_runtime_uses_mechanism_call() {
        let c = set_weights(&current(), &w(0)).unwrap();
        assert_eq!(c.call, "set_mechanism_weights");
        assert_eq!(
            c.arg_names(),
            ["netuid", "mecid", "dests", "weights", "version_key"]
        );
        assert_eq!(c.args[1].1, u(0u8));
        assert_eq!(c.args[2].1, u16s(&[1, 2]));
        assert_eq!(c.args[3].1, u16s(&[65_535, 10]));
        assert_eq!(c.args[4].1, u(9u64));
        let c1 = set_weights(&current(), &w(1)).unwrap();
        assert_eq!(c1.args[1].1, u(1u8));
    }

    #[test]
    fn set_weights_old_runtime() {
        let c = set_weights(&old(), &w(0)).unwrap();
        assert_eq!(c.call, "set_weights");
        assert_eq!(c.arg_names(), ["netuid", "dests", "weights", "version_key"]);
        assert!(matches!(
            set_weights(&old(), &w(1)),
            Err(ChainError::Unsupported(_))
        ));
    }

    #[test]
    fn commit_and_reveal() {
        let commit = WeightsCommit {
            netuid: 7,
            mecid: 1,
            hash: [3; 32],
        };
        let c = commit_weights(&current(), &commit).unwrap();
        assert_eq!(c.call, "commit_mechanism_weights");
        assert_eq!(c.arg_names(), ["netuid", "mecid", "commit_hash"]);
        assert_eq!(c.args[2].1, Value::from_bytes([3u8; 32]));
        let reveal = WeightsReveal {
            weights: w(1),
            salt: vec![5, 6],
        };
        let r = reveal_weights(&current(), &reveal).unwrap();
        assert_eq!(r.call, "reveal_mechanism_weights");
        assert_eq!(
            r.arg_names(),
            ["netuid", "mecid", "uids", "values", "salt", "version_key"]
        );
        let plain = WeightsReveal {
            weights: w(0),
            salt: vec![5],
        };
        let r = reveal_weights(&old(), &plain).unwrap();
        assert_eq!(r.call, "reveal_weights");
        assert_eq!(
            r.arg_names(),
            ["netuid", "uids", "values", "salt", "version_key"]
        );
        let c = commit_weights(&old(), &WeightsCommit { mecid: 0, ..commit }).unwrap();
        assert_eq!(c.arg_names(), ["netuid", "commit_hash"]);
    }

    /// The argument names and order of spec 459's `macros/dispatches.rs`.
    #[test]
    fn timelocked_commit_args() {
        let commit = TimelockedCommit {
            netuid: 7,
            mecid: 1,
            commit: vec![1, 2, 3],
            reveal_round: 1000,
            commit_reveal_version: 4,
        };
        let c = commit_timelocked_weights(&current(), &commit).unwrap();
        assert_eq!(c.call, "commit_timelocked_mechanism_weights");
        assert_eq!(
            c.arg_names(),
            [
                "netuid",
                "mecid",
                "commit",
                "reveal_round",
                "commit_reveal_version"
            ]
        );
        assert_eq!(c.args[2].1, Value::from_bytes([1u8, 2, 3]));
        let plain = TimelockedCommit { mecid: 0, ..commit };
        let c = commit_timelocked_weights(&old(), &plain).unwrap();
        assert_eq!(c.call, "commit_timelocked_weights");
        assert_eq!(
            c.arg_names(),
            ["netuid", "commit", "reveal_round", "commit_reveal_version"]
        );
    }

    #[test]
    fn serve_axon_args() {
        let a = AxonServe {
            netuid: 7,
            version: 3,
            ip: "10.1.2.3".parse().unwrap(),
            port: 8091,
            protocol: 0,
        };
        let c = serve_axon(&a);
        assert_eq!(
            c.arg_names(),
            [
                "netuid",
                "version",
                "ip",
                "port",
                "ip_type",
                "protocol",
                "placeholder1",
                "placeholder2"
            ]
        );
        assert_eq!(c.args[2].1, u(0x0a01_0203u32));
        assert_eq!(c.args[4].1, u(4u8));
    }

    #[test]
    fn commitment_is_one_raw_field() {
        let c = set_commitment(7, &[9; 32]).unwrap();
        assert_eq!(c.arg_names(), ["netuid", "info"]);
        let expected = Value::named_composite([(
            "fields",
            Value::unnamed_composite([Value::variant(
                "Raw32",
                Composite::unnamed([Value::from_bytes([9u8; 32])]),
            )]),
        )]);
        assert_eq!(c.args[1].1, expected);
        assert!(set_commitment(7, &[0; 129]).is_err());
    }

    #[test]
    fn transfer_keep_alive_args() {
        let c = transfer_keep_alive(&[4; 32], 123_456_789);
        assert_eq!(c.call, "transfer_keep_alive");
        assert_eq!(c.arg_names(), ["dest", "value"]);
        assert_eq!(
            c.args[0].1,
            Value::unnamed_variant("Id", [Value::from_bytes([4u8; 32])])
        );
        assert_eq!(c.args[1].1, u(123_456_789u64));
    }
}
