//! Detecting what a runtime offers from the metadata it serves.

use subxt::metadata::Metadata;

use crate::types::{RuntimeFeatures, RuntimeShape, StakeItem};

/// The pallet every Orchestra call goes to.
pub const SUBTENSOR: &str = "SubtensorModule";
/// The pallet that anchors commitments.
pub const COMMITMENTS: &str = "Commitments";

/// What detection reads from a runtime's metadata: which pallets, calls, storage items and
/// runtime APIs it declares. Implemented for subxt's [`Metadata`], and by tests for a list of
/// names (no runtime newer than the shipped spec-103 one runs here).
pub trait MetadataNames {
    /// The call index of `pallet`, if the runtime has it.
    fn pallet_index(&self, pallet: &str) -> Option<u8>;
    /// Whether `pallet.call` exists.
    fn has_call(&self, pallet: &str, call: &str) -> bool;
    /// Whether storage item `pallet.item` exists.
    fn has_storage(&self, pallet: &str, item: &str) -> bool;
    /// The type name (last path segment) of the first key of `pallet.item`, e.g.
    /// `NetUidStorageIndex`.
    fn first_key_type_name(&self, pallet: &str, item: &str) -> Option<String>;
    /// Whether the runtime API trait `name` exists.
    fn has_runtime_api(&self, name: &str) -> bool;
}

impl MetadataNames for Metadata {
    fn pallet_index(&self, pallet: &str) -> Option<u8> {
        self.pallet_by_name(pallet).map(|p| p.call_index())
    }
    fn has_call(&self, pallet: &str, call: &str) -> bool {
        self.pallet_by_name(pallet)
            .and_then(|p| p.call_variant_by_name(call))
            .is_some()
    }
    fn has_storage(&self, pallet: &str, item: &str) -> bool {
        self.pallet_by_name(pallet)
            .and_then(|p| p.storage())
            .and_then(|s| s.entry_by_name(item))
            .is_some()
    }
    fn first_key_type_name(&self, pallet: &str, item: &str) -> Option<String> {
        let entry = self
            .pallet_by_name(pallet)?
            .storage()?
            .entry_by_name(item)?;
        let key = entry.keys().next()?;
        let ty = self.types().resolve(key.key_id)?;
        ty.path.segments.last().cloned()
    }
    fn has_runtime_api(&self, name: &str) -> bool {
        self.runtime_api_trait_by_name(name).is_some()
    }
}

/// Whether `pallet.call` exists.
pub fn has_call(md: &Metadata, pallet: &str, call: &str) -> bool {
    MetadataNames::has_call(md, pallet, call)
}

/// Whether storage item `pallet.item` exists.
pub fn has_storage(md: &Metadata, pallet: &str, item: &str) -> bool {
    MetadataNames::has_storage(md, pallet, item)
}

/// Reads the runtime shape from metadata; `None` when the metadata has no `SubtensorModule`
/// (not a subtensor chain) or no stake item we know.
pub fn detect(
    md: &impl MetadataNames,
    spec_name: String,
    spec_version: u32,
    transaction_version: u32,
) -> Option<RuntimeShape> {
    let subtensor_pallet_index = md.pallet_index(SUBTENSOR)?;
    let stake_item = if md.has_storage(SUBTENSOR, "TotalHotkeyAlpha") {
        StakeItem::TotalHotkeyAlpha
    } else if md.has_storage(SUBTENSOR, "TotalHotkeyStake") {
        StakeItem::TotalHotkeyStake
    } else {
        return None;
    };
    let has_mechanisms = md.has_call(SUBTENSOR, "set_mechanism_weights");
    // The key type says it directly on runtimes that name it; mechanisms imply it otherwise.
    let indexed_by_netuid_index = has_mechanisms
        || md.first_key_type_name(SUBTENSOR, "Weights").as_deref() == Some("NetUidStorageIndex");
    Some(RuntimeShape {
        spec_name,
        spec_version,
        transaction_version,
        subtensor_pallet_index,
        stake_item,
        has_mechanisms,
        indexed_by_netuid_index,
        has_commit_reveal: md.has_call(SUBTENSOR, "commit_weights")
            && md.has_call(SUBTENSOR, "reveal_weights"),
        has_timelocked_commits: md.has_call(SUBTENSOR, "commit_timelocked_weights"),
        has_commitments: md.has_call(COMMITMENTS, "set_commitment"),
        has_subnet_info_api: md.has_runtime_api("SubnetInfoRuntimeApi"),
        features: detect_features(md),
    })
}

/// The epoch, mechanism and weight features of a runtime, by the storage items and calls that
/// carry them (names as in RaoFoundation/subtensor spec 459 `pallets/subtensor/src/lib.rs`).
pub fn detect_features(md: &impl MetadataNames) -> RuntimeFeatures {
    let item = |name: &str| md.has_storage(SUBTENSOR, name);
    RuntimeFeatures {
        mechanism_count: item("MechanismCountCurrent"),
        mechanism_emission_split: item("MechanismEmissionSplit"),
        max_mechanism_count_storage: item("MaxMechanismCount"),
        stateful_epochs: item("LastEpochBlock") && item("SubnetEpochIndex"),
        trigger_epoch: md.has_call(SUBTENSOR, "trigger_epoch"),
        activity_cutoff_factor: item("ActivityCutoffFactorMilli"),
        yuma3: item("Yuma3On"),
        liquid_alpha: item("LiquidAlphaOn"),
        bonds_reset: item("BondsResetOn"),
        commit_reveal_version: item("CommitRevealWeightsVersion"),
        owner_hotkey: item("SubnetOwnerHotkey"),
        rank_and_trust: item("Rank") && item("Trust"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// A runtime's metadata reduced to names: `"Pallet.item"` for calls and storage alike.
    struct Names(BTreeSet<String>);

    impl Names {
        fn new(names: &[&str]) -> Self {
            Names(names.iter().map(|s| s.to_string()).collect())
        }
    }

    impl MetadataNames for Names {
        fn pallet_index(&self, pallet: &str) -> Option<u8> {
            self.0
                .iter()
                .any(|n| n.starts_with(&format!("{pallet}.")))
                .then_some(7)
        }
        fn has_call(&self, pallet: &str, call: &str) -> bool {
            self.0.contains(&format!("{pallet}.{call}"))
        }
        fn has_storage(&self, pallet: &str, item: &str) -> bool {
            self.0.contains(&format!("{pallet}.{item}"))
        }
        fn first_key_type_name(&self, _: &str, _: &str) -> Option<String> {
            None
        }
        fn has_runtime_api(&self, name: &str) -> bool {
            self.0.contains(name)
        }
    }

    /// The names spec 103 (the shipped test runtime) has: none of the new features.
    const SPEC_103: &[&str] = &[
        "SubtensorModule.TotalHotkeyAlpha",
        "SubtensorModule.commit_weights",
        "SubtensorModule.reveal_weights",
        "SubtensorModule.Rank",
        "SubtensorModule.Trust",
        "SubtensorModule.LiquidAlphaOn",
        "Commitments.set_commitment",
    ];

    /// The names spec 459 declares for them (RaoFoundation/subtensor `pallets/subtensor/src/lib.rs`
    /// storage items, `macros/dispatches.rs` calls).
    const SPEC_459: &[&str] = &[
        "SubtensorModule.TotalHotkeyAlpha",
        "SubtensorModule.commit_weights",
        "SubtensorModule.reveal_weights",
        "SubtensorModule.commit_timelocked_weights",
        "SubtensorModule.set_mechanism_weights",
        "SubtensorModule.trigger_epoch",
        "SubtensorModule.MechanismCountCurrent",
        "SubtensorModule.MechanismEmissionSplit",
        "SubtensorModule.MaxMechanismCount",
        "SubtensorModule.LastEpochBlock",
        "SubtensorModule.SubnetEpochIndex",
        "SubtensorModule.PendingEpochAt",
        "SubtensorModule.ActivityCutoffFactorMilli",
        "SubtensorModule.Yuma3On",
        "SubtensorModule.LiquidAlphaOn",
        "SubtensorModule.BondsResetOn",
        "SubtensorModule.CommitRevealWeightsVersion",
        "SubtensorModule.SubnetOwnerHotkey",
        "Commitments.set_commitment",
        "SubnetInfoRuntimeApi",
    ];

    #[test]
    fn spec_103_has_none_of_the_new_features() {
        let s = detect(&Names::new(SPEC_103), "node-subtensor".into(), 103, 1).unwrap();
        assert!(!s.has_mechanisms && s.has_commit_reveal && !s.has_timelocked_commits);
        assert_eq!(
            s.features,
            RuntimeFeatures {
                liquid_alpha: true,
                rank_and_trust: true,
                ..RuntimeFeatures::default()
            }
        );
    }

    #[test]
    fn spec_459_has_them_all() {
        let s = detect(&Names::new(SPEC_459), "node-subtensor".into(), 459, 1).unwrap();
        assert!(s.has_mechanisms && s.indexed_by_netuid_index && s.has_timelocked_commits);
        assert!(s.has_subnet_info_api);
        let f = s.features;
        assert!(
            f.mechanism_count
                && f.mechanism_emission_split
                && f.max_mechanism_count_storage
                && f.stateful_epochs
                && f.trigger_epoch
                && f.activity_cutoff_factor
                && f.yuma3
                && f.liquid_alpha
                && f.bonds_reset
                && f.commit_reveal_version
                && f.owner_hotkey
                && !f.rank_and_trust,
            "{f:?}"
        );
    }

    #[test]
    fn not_a_subtensor_chain() {
        assert!(detect(&Names::new(&["Balances.transfer"]), "x".into(), 1, 1).is_none());
    }
}
