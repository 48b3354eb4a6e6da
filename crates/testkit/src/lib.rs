//! switchyard-testkit: contract suites written once and instantiated for every backend of a
//! port, so the embedded and the Kafka / Scylla backends are held to the very same behaviour
//! (Quickwit's `metastore_test_suite!`).
//!
//! ```ignore
//! switchyard_testkit::log_contract_tests!(EmbeddedHarness::new());
//! switchyard_testkit::store_contract_tests!(EmbeddedStoreHarness::new());
//! ```
//!
//! A harness opens a fresh client of one backend over the same underlying storage each time
//! `open` is called (after the previous client was closed), so durability across a restart is
//! part of the contract.

pub mod log_contract;
#[cfg(feature = "processor")]
pub mod node;
pub mod store_contract;

/// Opens clients of one event-log backend over one isolated storage (a temp dir, a random
/// topic prefix on a broker).
pub trait LogHarness: Send + Sync {
    /// The backend under test.
    type Log: switchyard_log::EventLog;
    /// Opens a client; the previous one, if any, was closed first.
    fn open(&self) -> impl std::future::Future<Output = anyhow::Result<Self::Log>> + Send;
}

/// Opens clients of one state-store backend over one isolated storage.
pub trait StoreHarness: Send + Sync {
    /// The backend under test.
    type Store: switchyard_store::StateStore;
    /// Opens a client; the previous one, if any, was dropped first.
    fn open(&self) -> impl std::future::Future<Output = anyhow::Result<Self::Store>> + Send;
}

/// Instantiates every event-log contract test for a harness expression.
#[macro_export]
macro_rules! log_contract_tests {
    ($harness:expr) => {
        $crate::log_contract_tests!(@each $harness;
            append_and_read_back_in_order,
            same_key_same_partition_kafka_partitioner,
            offsets_are_dense_and_watermarks_move,
            read_bounds_are_errors_or_empty,
            headers_and_timestamps_round_trip,
            offset_for_time_finds_first_at_or_after,
            group_resumes_from_committed_offset,
            members_split_partitions_and_rebalance,
            start_latest_skips_existing_records,
            independent_groups_each_see_everything,
            data_and_offsets_survive_reopen,
            concurrent_producers_keep_per_key_order,
            poll_wakes_up_on_append,
            empty_append_is_a_no_op
        );
    };
    (@each $harness:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() -> anyhow::Result<()> {
                let harness = $harness;
                $crate::log_contract::$name(&harness).await
            }
        )+
    };
}

/// Instantiates every state-store contract test for a harness expression, optionally with one
/// attribute on every test (a backend that needs a server the machine may not have marks them
/// `#[cfg_attr(not(..), ignore = "...")]`, so they are reported as skipped, never as passed).
#[macro_export]
macro_rules! store_contract_tests {
    (@each #[$attr:meta] $harness:expr; $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[$attr]
            async fn $name() -> anyhow::Result<()> {
                let harness = $harness;
                $crate::store_contract::$name(&harness).await
            }
        )+
    };
    (#[$attr:meta] $harness:expr) => {
        $crate::store_contract_tests!(@each #[$attr] $harness;
            put_get_delete,
            scan_prefix_is_ordered_bounded_and_paginated,
            tables_are_isolated,
            apply_writes_state_and_checkpoint_together,
            state_and_checkpoints_survive_reopen,
            invalid_table_is_rejected
        );
    };
    ($harness:expr) => {
        $crate::store_contract_tests!(#[cfg(all())] $harness);
    };
}
