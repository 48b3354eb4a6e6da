//! The Parquet sink on the real embedded log and store, writing to a real local directory:
//! rows land in the right partitions, files roll by size and time, and a crash or a redelivery
//! neither loses nor duplicates a row.

#![expect(
    clippy::expect_used,
    reason = "fixtures that cannot be built leave no test to run"
)]

mod support;

mod crash;
mod land;
mod roll;
