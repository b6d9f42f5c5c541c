//! Orchestra's wire protocol.
