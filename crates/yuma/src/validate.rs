//! Strict checks of an [`EpochInput`] for callers that want errors instead of silent dropping.

use crate::types::EpochInput;

/// Something in an epoch input the chain could never hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// More neurons than a u16 uid can address.
    #[error("neurons: {n} entries, but a subnet holds at most 65535 uids")]
    TooManyNeurons {
        /// Number of neurons given.
        n: usize,
    },
    /// A weights or bonds entry names a uid that does not exist.
    #[error("neurons[{neuron}].{field}[{entry}]: uid {uid} out of range (n = {n})")]
    UidOutOfRange {
        /// Row (neuron index).
        neuron: usize,
        /// `weights` or `bonds`.
        field: &'static str,
        /// Position in the row.
        entry: usize,
        /// The uid given.
        uid: u16,
        /// Number of neurons.
        n: usize,
    },
    /// A weights or bonds row names the same uid twice (the chain rejects that on set).
    #[error("neurons[{neuron}].{field}[{entry}]: uid {uid} appears twice in the row")]
    DuplicateUid {
        /// Row (neuron index).
        neuron: usize,
        /// `weights` or `bonds`.
        field: &'static str,
        /// Position of the repeat.
        entry: usize,
        /// The repeated uid.
        uid: u16,
    },
    /// `owner_uid` names a uid that does not exist.
    #[error("owner_uid: uid {uid} out of range (n = {n})")]
    OwnerOutOfRange {
        /// The uid given.
        uid: u16,
        /// Number of neurons.
        n: usize,
    },
}

/// Checks that `input` is something the chain could hold: uids in range, no repeated uid in a row.
/// [`crate::run_epoch`] accepts anything; this is for front ends that prefer a clear error.
pub fn validate(input: &EpochInput) -> Result<(), InputError> {
    let n = input.neurons.len();
    if n > usize::from(u16::MAX) {
        return Err(InputError::TooManyNeurons { n });
    }
    if let Some(uid) = input.owner_uid
        && usize::from(uid) >= n
    {
        return Err(InputError::OwnerOutOfRange { uid, n });
    }
    let mut seen = vec![false; n];
    for (i, nr) in input.neurons.iter().enumerate() {
        for (field, row) in [("weights", &nr.weights), ("bonds", &nr.bonds)] {
            for (e, &(uid, _)) in row.iter().enumerate() {
                match seen.get_mut(usize::from(uid)) {
                    None => {
                        return Err(InputError::UidOutOfRange {
                            neuron: i,
                            field,
                            entry: e,
                            uid,
                            n,
                        });
                    }
                    Some(s) if *s => {
                        return Err(InputError::DuplicateUid {
                            neuron: i,
                            field,
                            entry: e,
                            uid,
                        });
                    }
                    Some(s) => *s = true,
                }
            }
            for &(uid, _) in row.iter() {
                if let Some(s) = seen.get_mut(usize::from(uid)) {
                    *s = false;
                }
            }
        }
    }
    Ok(())
}
