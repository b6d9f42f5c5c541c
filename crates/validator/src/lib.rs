//! The sans-IO validator core: challenge generator, auditor, proposal verifier, scorer and weight
//! setter.
//!
//! Not built yet (issue 5).
