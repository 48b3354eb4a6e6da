//! A processor's world in a directory, for the stream crates' runtime tests: the real embedded
//! log and store, the metrics and a manual clock, with restarts that close everything as a
//! process exit would.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use switchyard_events::{Codec, Event};
use switchyard_log::embedded::{EmbeddedLog, EmbeddedOptions};
use switchyard_log::{EventLog, Record, Topic};
use switchyard_processor::ProcessorDeps;
use switchyard_runtime::{ManualClock, Metrics};
use switchyard_store::{EmbeddedStore, StateStore};

/// An embedded log and store under one directory.
pub struct ProcessorNode {
    /// The directory (`log/`, `store/`).
    pub dir: PathBuf,
    /// The log.
    pub log: EmbeddedLog,
    /// The store.
    pub store: EmbeddedStore,
    /// The metrics processors record into.
    pub metrics: Metrics,
    partitions: u32,
    clock_micros: i64,
}

impl std::fmt::Debug for ProcessorNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorNode")
            .field("dir", &self.dir)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl ProcessorNode {
    /// Opens (or reopens) the node in `dir`, its topics with `partitions` partitions, its
    /// processors' clock at `clock_micros`.
    pub fn open(dir: &Path, partitions: u32, clock_micros: i64) -> Result<Self> {
        let options = EmbeddedOptions {
            partitions,
            ..EmbeddedOptions::default()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            log: EmbeddedLog::open_dir(&dir.join("log"), options).context("open log")?,
            store: EmbeddedStore::open_dir(&dir.join("store")).context("open store")?,
            metrics: Metrics::new(),
            partitions,
            clock_micros,
        })
    }

    /// Closes the log and drops the store, as a process exit would, and opens both again.
    pub async fn restart(self) -> Result<Self> {
        let (dir, partitions, clock) = (self.dir.clone(), self.partitions, self.clock_micros);
        self.log.close().await?;
        drop(self);
        Self::open(&dir, partitions, clock)
    }

    /// The dependencies of a processor run on this node.
    pub fn deps(&self) -> Result<ProcessorDeps<EmbeddedLog, EmbeddedStore>> {
        Ok(ProcessorDeps {
            log: self.log.clone(),
            store: self.store.clone(),
            codec: Codec::new()?,
            metrics: self.metrics.clone(),
            clock: Arc::new(ManualClock::at_micros(self.clock_micros)),
        })
    }

    /// Appends events to their topics in order (consecutive events of one topic in one append),
    /// each record stamped with its event time.
    pub async fn publish(&self, events: &[Event]) -> Result<()> {
        let codec = Codec::new()?;
        let mut run: Vec<Record> = Vec::new();
        let mut topic: Option<Topic> = None;
        for event in events {
            if topic.is_some_and(|t| t != event.topic()) {
                self.flush(topic, std::mem::take(&mut run)).await?;
            }
            topic = Some(event.topic());
            run.push(
                Record::new(event.partition_key().as_str(), codec.encode(event)?)
                    .at(event.envelope().event_time.as_millis()),
            );
        }
        self.flush(topic, run).await
    }

    async fn flush(&self, topic: Option<Topic>, records: Vec<Record>) -> Result<()> {
        if let Some(topic) = topic
            && !records.is_empty()
        {
            self.log.append(topic, records).await?;
        }
        Ok(())
    }

    /// Returns whether `group` has checkpointed the end of every non-empty partition of
    /// `inputs`.
    pub async fn caught_up(&self, group: &str, inputs: &[Topic]) -> Result<bool> {
        for topic in inputs {
            for partition in 0..self.log.partitions(*topic) {
                let end = self.log.watermarks(*topic, partition).await?.end;
                let checkpoint = self.store.checkpoint(group, *topic, partition).await?;
                if end > 0 && checkpoint != Some(end) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }
}
