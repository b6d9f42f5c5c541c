//! Detecting what a runtime offers from the metadata it serves.

use subxt::metadata::Metadata;

use crate::types::{RuntimeShape, StakeItem};

/// The pallet every Orchestra call goes to.
pub const SUBTENSOR: &str = "SubtensorModule";
/// The pallet that anchors commitments.
pub const COMMITMENTS: &str = "Commitments";

/// Whether `pallet.call` exists.
pub fn has_call(md: &Metadata, pallet: &str, call: &str) -> bool {
    md.pallet_by_name(pallet)
        .and_then(|p| p.call_variant_by_name(call))
        .is_some()
}

/// Whether storage item `pallet.item` exists.
pub fn has_storage(md: &Metadata, pallet: &str, item: &str) -> bool {
    md.pallet_by_name(pallet)
        .and_then(|p| p.storage())
        .and_then(|s| s.entry_by_name(item))
        .is_some()
}

/// The type name (last path segment) of the first key of `pallet.item`, e.g. `NetUidStorageIndex`.
fn first_key_type_name(md: &Metadata, pallet: &str, item: &str) -> Option<String> {
    let entry = md.pallet_by_name(pallet)?.storage()?.entry_by_name(item)?;
    let key = entry.keys().next()?;
    let ty = md.types().resolve(key.key_id)?;
    ty.path.segments.last().cloned()
}

/// Reads the runtime shape from metadata; `None` when the metadata has no `SubtensorModule`
/// (not a subtensor chain) or no stake item we know.
pub fn detect(
    md: &Metadata,
    spec_name: String,
    spec_version: u32,
    transaction_version: u32,
) -> Option<RuntimeShape> {
    let pallet = md.pallet_by_name(SUBTENSOR)?;
    let stake_item = if has_storage(md, SUBTENSOR, "TotalHotkeyAlpha") {
        StakeItem::TotalHotkeyAlpha
    } else if has_storage(md, SUBTENSOR, "TotalHotkeyStake") {
        StakeItem::TotalHotkeyStake
    } else {
        return None;
    };
    let has_mechanisms = has_call(md, SUBTENSOR, "set_mechanism_weights");
    // The key type says it directly on runtimes that name it; mechanisms imply it otherwise.
    let indexed_by_netuid_index = has_mechanisms
        || first_key_type_name(md, SUBTENSOR, "Weights").as_deref() == Some("NetUidStorageIndex");
    Some(RuntimeShape {
        spec_name,
        spec_version,
        transaction_version,
        subtensor_pallet_index: pallet.call_index(),
        stake_item,
        has_mechanisms,
        indexed_by_netuid_index,
        has_commit_reveal: has_call(md, SUBTENSOR, "commit_weights")
            && has_call(md, SUBTENSOR, "reveal_weights"),
        has_timelocked_commits: has_call(md, SUBTENSOR, "commit_timelocked_weights"),
        has_commitments: has_call(md, COMMITMENTS, "set_commitment"),
        has_subnet_info_api: md
            .runtime_api_trait_by_name("SubnetInfoRuntimeApi")
            .is_some(),
    })
}
