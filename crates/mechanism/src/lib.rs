//! Orchestra's scoring terms, the orchestration/Ledger combination modes, EMA bookkeeping and
//! weight quantisation.
//!
//! Not built yet (issue 5).
