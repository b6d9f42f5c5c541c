//! The `Chain` trait (the seam the simulator implements too) and the subtensor client.
//!
//! Not built yet (issue 8).
