//! The fold: request-path events into per-partition window cells, route events into route
//! state, then (throttled by event time) the merge step that publishes a snapshot.
//!
//! Pure over its state: no clock, no I/O besides the staged state. Time is the inputs' event
//! time only.

use std::sync::Arc;

use switchyard_events::{
    ConstraintsChanged, Event, EventId, FeedbackSource, FeedbackSubmitted, JudgeOutcome,
    JudgeScored, OrgId, RequestId, ResponseCompleted, ResponseStatus, RouteConfigured,
    RouteDecided, RoutePinned, RouteUnpinned, Target,
};
use switchyard_processor::{
    Input, Output, ProcessError, Processor, StagedState, Topic, require_nonempty,
};
use switchyard_store::StateStore;

use crate::config::ProjectorConfig;
use crate::snapshot;
use crate::snapshot::scan_all;
use crate::state::{
    BaselineHint, CELLS, ConfiguredFacts, ConstraintsHead, Contribution, DecisionFacts, EXPIRY,
    EXPIRY_CURSORS, Ending, HINTS, OFFSETS, PROGRESS, PROGRESS_KEY, PinFacts, Progress, REQUESTS,
    ROLLBACK, ROUTES, RequestRecord, ResponseFacts, RollbackState, RouteControl, ScoreFacts,
    WATERMARKS, cell_key, cell_prefix, expiry_key, hint_key, keep_newer, org_id_key,
    parse_expiry_key, sortable,
};
use crate::stats::{WindowCell, nano_usd, quality_bin};

/// The projector's consumer group (and checkpoint namespace).
pub const GROUP: &str = "projector";

/// The topics the projector consumes.
pub const INPUTS: &[Topic] = &[
    Topic::Decisions,
    Topic::Responses,
    Topic::Feedback,
    Topic::JudgeScores,
    Topic::Pins,
    Topic::Constraints,
    Topic::Control,
];

/// Most expired requests whose join state one input drops (bounds the work per input; a
/// backlog drains over the following inputs).
const EXPIRY_PER_INPUT: usize = 16;
/// The join-state id of a (route, model) pair rating: this prefix and its feedback id.
const PAIR_PREFIX: &str = "pair:";
/// Page size of state scans.
pub(crate) const SCAN_PAGE: usize = 512;

/// The projector as a [`Processor`]: run it in a
/// [`ProcessorRuntime`](switchyard_processor::ProcessorRuntime) (see [`crate::run`]). It emits
/// `RoutingTableUpdated` snapshots and `RoutePinned` automatic rollbacks.
#[derive(Debug, Clone)]
pub struct ProjectorProcessor {
    config: Arc<ProjectorConfig>,
}

impl ProjectorProcessor {
    /// Returns a projector with validated settings.
    pub(crate) fn new(config: ProjectorConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// Returns the settings.
    pub fn config(&self) -> &ProjectorConfig {
        &self.config
    }
}

/// Whether an input asks for a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// Nothing the table shows changed.
    No,
    /// Window data changed: publish when the org's throttle allows.
    IfDue,
    /// A route's configuration, constraints or pin changed: publish now.
    Now,
}

impl Processor for ProjectorProcessor {
    fn group(&self) -> &'static str {
        GROUP
    }

    fn inputs(&self) -> &'static [Topic] {
        INPUTS
    }

    async fn process<S: StateStore>(
        &self,
        input: &Input,
        state: &mut StagedState<'_, S>,
        out: &mut Output,
    ) -> Result<(), ProcessError> {
        let org = input.event.envelope().org.clone();
        require_nonempty("org", org.as_str())?;
        let fold = Fold {
            config: &self.config,
            partition: input.partition,
        };
        let time = input.event_time().as_micros();
        fold_progress(
            state,
            input.topic.code(),
            input.partition,
            input.offset,
            time,
        )
        .await?;
        let watermark = fold.advance_watermark(state, time).await?;
        let publish = match &input.event {
            Event::RouteDecided(e) => fold.on_decision(state, e, watermark).await?,
            Event::ResponseCompleted(e) => fold.on_response(state, e, watermark).await?,
            Event::FeedbackSubmitted(e) => fold.on_feedback(state, e, watermark).await?,
            Event::JudgeScored(e) => fold.on_judged(state, e, watermark).await?,
            Event::RouteConfigured(e) => on_route_configured(state, e).await?,
            Event::ConstraintsChanged(e) => on_constraints(state, e).await?,
            Event::RoutePinned(e) => on_pinned(state, e, input.offset).await?,
            Event::RouteUnpinned(e) => on_unpinned(state, e, input.offset).await?,
            // API keys and anything else on these topics: nothing the table shows.
            _ => Publish::No,
        };
        fold.expire_requests(state, watermark).await?;
        if publish != Publish::No {
            snapshot::publish(
                &self.config,
                state,
                out,
                input,
                &org,
                publish == Publish::Now,
            )
            .await?;
        }
        Ok(())
    }
}

/// Records the input in the [`PROGRESS`] entry (seeded, in a store written before it existed,
/// from the per-partition [`OFFSETS`] and [`WATERMARKS`] it replaces).
async fn fold_progress<S: StateStore>(
    state: &mut StagedState<'_, S>,
    topic_code: u8,
    partition: u32,
    offset: u64,
    time: i64,
) -> Result<(), ProcessError> {
    let mut progress = match state.get(PROGRESS, PROGRESS_KEY).await? {
        Some(bytes) => Progress::decode(&bytes).ok_or_else(|| {
            ProcessError::fatal(format!("stored {PROGRESS} entry does not parse"))
        })?,
        None => seed_progress(state).await?,
    };
    progress.fold(topic_code, partition, offset, time);
    state.put(PROGRESS, PROGRESS_KEY, progress.encode());
    Ok(())
}

/// Returns the progress the per-partition tables of an older store record (empty in a new one).
async fn seed_progress<S: StateStore>(
    state: &StagedState<'_, S>,
) -> Result<Progress, ProcessError> {
    let mut progress = Progress::default();
    scan_all(state, OFFSETS, b"", |key, value| {
        if let (Some((code, partition)), Ok(next)) = (key.split_first(), <[u8; 8]>::try_from(value))
            && let Ok(partition) = <[u8; 4]>::try_from(partition)
        {
            progress.next.insert(
                (*code, u32::from_be_bytes(partition)),
                u64::from_be_bytes(next),
            );
        }
        Ok(())
    })
    .await?;
    scan_all(state, WATERMARKS, b"", |_, value| {
        if let Ok(bytes) = <[u8; 8]>::try_from(value) {
            let time = i64::from_be_bytes(bytes);
            progress.watermark = Some(progress.watermark.map_or(time, |w| w.max(time)));
        }
        Ok(())
    })
    .await?;
    Ok(progress)
}

/// Returns the contributions in `old` but not in `new`, and in `new` but not in `old`
/// (multisets; both sorted).
fn diff<'a>(
    old: &'a [Contribution],
    new: &'a [Contribution],
) -> (Vec<&'a Contribution>, Vec<&'a Contribution>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                removed.push(a);
                i += 1;
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                added.push(b);
                j += 1;
            }
            (Some(a), None) => {
                removed.push(a);
                i += 1;
            }
            (None, None) => break,
        }
    }
    (removed, added)
}

/// The fold of one input on one partition.
struct Fold<'a> {
    config: &'a ProjectorConfig,
    partition: u32,
}

impl Fold<'_> {
    /// Moves the partition's watermark (newest event time folded) up to `time`; returns it.
    async fn advance_watermark<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        time: i64,
    ) -> Result<i64, ProcessError> {
        let key = self.partition.to_be_bytes();
        let current = state
            .get(WATERMARKS, &key)
            .await?
            .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
            .map(i64::from_be_bytes);
        match current {
            Some(current) if current >= time => Ok(current),
            _ => {
                state.put(WATERMARKS, key.to_vec(), time.to_be_bytes().to_vec());
                Ok(time)
            }
        }
    }

    /// Returns whether the bucket starting at `bucket` has left the window at `now`.
    fn expired(&self, bucket: i64, now: i64) -> bool {
        bucket.saturating_add(self.config.bucket_micros())
            <= now.saturating_sub(self.config.window_micros())
    }

    async fn on_decision<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        decision: &RouteDecided,
        watermark: i64,
    ) -> Result<Publish, ProcessError> {
        require_nonempty("request_id", decision.request_id.as_str())?;
        require_nonempty("route", decision.route.as_str())?;
        let org = &decision.envelope.org;
        let facts = DecisionFacts {
            route: decision.route.clone(),
            served_model: decision.served_model.clone(),
            baseline_model: decision.baseline_model.clone(),
            at: decision.envelope.event_time,
            event_id: decision.envelope.event_id,
        };
        // The route's newest baseline, for routes the projector has no configuration of.
        let hint_key = hint_key(org, decision.route.as_str(), self.partition);
        let hint = state.get_json::<BaselineHint>(HINTS, &hint_key).await?;
        let new_baseline = hint
            .as_ref()
            .is_none_or(|h| h.baseline != facts.baseline_model);
        if hint.is_none_or(|h| (h.at, &h.baseline) < (facts.at, &facts.baseline_model)) {
            let hint = BaselineHint {
                at: facts.at,
                baseline: facts.baseline_model.clone(),
            };
            state.put_json(HINTS, hint_key, &hint)?;
        }
        let publish = self
            .fold_request(state, org, &decision.request_id, watermark, |record| {
                keep_newer(&mut record.decision, facts)
            })
            .await?;
        // A route's first decision (or a new baseline) shows in the table even before any
        // outcome does.
        Ok(if new_baseline {
            Publish::IfDue
        } else {
            publish
        })
    }

    async fn on_response<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        response: &ResponseCompleted,
        watermark: i64,
    ) -> Result<Publish, ProcessError> {
        require_nonempty("request_id", response.request_id.as_str())?;
        let facts = ResponseFacts {
            ending: match response.status {
                ResponseStatus::Ok => Ending::Success,
                ResponseStatus::Error | ResponseStatus::Timeout => Ending::Error,
                ResponseStatus::Truncated | ResponseStatus::Refused => Ending::Neither,
                ResponseStatus::Cancelled => Ending::Cancelled,
            },
            served_model: response.served_model.clone(),
            cost_nano_usd: response.cost_usd.map(|c| nano_usd(c.get())),
            latency_ms: u64::try_from(response.latency_ms).unwrap_or(0),
            at: response.envelope.event_time,
            event_id: response.envelope.event_id,
        };
        // A shadow mirror's request id is the original's plus a suffix: its outcome joins the
        // original request's decision, in a slot of its own (never in place of the response the
        // client got).
        let mirror_of = if response.shadow {
            match response
                .request_id
                .as_str()
                .strip_suffix(ResponseCompleted::MIRROR_SUFFIX)
            {
                Some(original) => Some(original),
                // A mirror that does not name its original cannot be attributed to a route.
                None => return Ok(Publish::No),
            }
        } else {
            None
        };
        match mirror_of {
            Some(original) => {
                self.fold_request(
                    state,
                    &response.envelope.org,
                    &RequestId::new(original),
                    watermark,
                    |record| keep_newer(&mut record.mirror, facts),
                )
                .await
            }
            None => {
                self.fold_request(
                    state,
                    &response.envelope.org,
                    &response.request_id,
                    watermark,
                    |record| keep_newer(&mut record.response, facts),
                )
                .await
            }
        }
    }

    async fn on_feedback<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        feedback: &FeedbackSubmitted,
        watermark: i64,
    ) -> Result<Publish, ProcessError> {
        // Session feedback reaches the windows as per-request feedback, propagated by the
        // session-NPS processor; benchmark priors are shipped, never org feedback.
        if feedback.source == FeedbackSource::Benchmark {
            return Ok(Publish::No);
        }
        require_nonempty("feedback_id", feedback.feedback_id.as_str())?;
        // A pair rating is kept like a request of its own, named by its feedback id (which
        // already names the org, pair, source and key): the newest rating of the id wins, and
        // its one observation goes straight to the (route, model) it names.
        let (request_id, attributed) = match &feedback.target {
            Target::Request { request_id } => (request_id.clone(), None),
            Target::Pair { route, model } => {
                require_nonempty("route", route.as_str())?;
                require_nonempty("model", model.as_str())?;
                (
                    RequestId::new(format!("{PAIR_PREFIX}{}", feedback.feedback_id)),
                    Some((route.clone(), model.clone())),
                )
            }
            Target::Session { .. } => return Ok(Publish::No),
        };
        require_nonempty("request_id", request_id.as_str())?;
        let id = format!("feedback:{}", feedback.feedback_id);
        let facts = ScoreFacts {
            source: feedback.source,
            bin: Some(quality_bin(feedback.normalized_score.get())),
            judged: attributed,
            at: feedback.envelope.event_time,
            event_id: feedback.envelope.event_id,
        };
        self.fold_request(
            state,
            &feedback.envelope.org,
            &request_id,
            watermark,
            |record| {
                let mut slot = record.scores.remove(&id);
                let changed = keep_newer(&mut slot, facts);
                if let Some(score) = slot {
                    record.scores.insert(id, score);
                }
                changed
            },
        )
        .await
    }

    async fn on_judged<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        judged: &JudgeScored,
        watermark: i64,
    ) -> Result<Publish, ProcessError> {
        require_nonempty("request_id", judged.request_id.as_str())?;
        require_nonempty("judgement_id", judged.judgement_id.as_str())?;
        require_nonempty("route", judged.route.as_str())?;
        let id = format!("judge:{}", judged.judgement_id);
        let facts = ScoreFacts {
            source: FeedbackSource::Judge,
            bin: match &judged.outcome {
                JudgeOutcome::Scored { score } => Some(quality_bin(score.get())),
                JudgeOutcome::Failed { .. } => None,
            },
            judged: Some((judged.route.clone(), judged.model.clone())),
            at: judged.envelope.event_time,
            event_id: judged.envelope.event_id,
        };
        self.fold_request(
            state,
            &judged.envelope.org,
            &judged.request_id,
            watermark,
            |record| {
                let mut slot = record.scores.remove(&id);
                let changed = keep_newer(&mut slot, facts);
                if let Some(score) = slot {
                    record.scores.insert(id, score);
                }
                changed
            },
        )
        .await
    }

    /// Updates a request's facts with `update` (which says whether anything changed), then
    /// brings the window cells in line with the request's new contributions: retracts what no
    /// longer holds, adds what is new.
    async fn fold_request<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        org: &OrgId,
        request: &RequestId,
        watermark: i64,
        update: impl FnOnce(&mut RequestRecord) -> bool,
    ) -> Result<Publish, ProcessError> {
        let key = org_id_key(org, request.as_str());
        let mut record = state
            .get_json::<RequestRecord>(REQUESTS, &key)
            .await?
            .unwrap_or_else(|| RequestRecord {
                partition: self.partition,
                ..RequestRecord::default()
            });
        if !update(&mut record) {
            // A redelivery, or an older version of a fact already folded.
            return Ok(Publish::No);
        }
        let desired = record.contributions(self.config.bucket_micros());
        let (removed, added) = diff(&record.folded, &desired);
        let changed = !removed.is_empty() || !added.is_empty();
        for contribution in removed {
            self.retract(state, org, contribution).await?;
        }
        let mut skipped = Vec::new();
        for contribution in added {
            if !self.add(state, org, contribution, watermark).await? {
                skipped.push(contribution.clone());
            }
        }
        let mut folded = desired.clone();
        for contribution in &skipped {
            if let Some(i) = folded.iter().position(|c| c == contribution) {
                folded.remove(i);
            }
        }
        record.folded = folded;

        let expires_at = self.expires_at(&record);
        if record.expires_at != expires_at {
            if let Some(old) = record.expires_at {
                state.delete(
                    EXPIRY,
                    expiry_key(record.partition, old, org, request.as_str()),
                );
            }
            if let Some(new) = expires_at {
                state.put(
                    EXPIRY,
                    expiry_key(record.partition, new, org, request.as_str()),
                    Vec::new(),
                );
                let mut sweep = Sweep::read(state, record.partition).await?;
                if sweep.indexed(new) {
                    sweep.write(state, record.partition);
                }
            }
            record.expires_at = expires_at;
        }
        state.put_json(REQUESTS, key, &record)?;
        Ok(if changed { Publish::IfDue } else { Publish::No })
    }

    /// Adds a contribution to its cell; returns `false` when the cell's bucket has already left
    /// the window (nothing is written: no snapshot can show it).
    async fn add<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        org: &OrgId,
        contribution: &Contribution,
        watermark: i64,
    ) -> Result<bool, ProcessError> {
        if self.expired(contribution.bucket, watermark) {
            return Ok(false);
        }
        let key = cell_key(
            org,
            contribution.route.as_str(),
            contribution.model.as_str(),
            self.partition,
            contribution.bucket,
        );
        let mut cell = match state.get_json::<WindowCell>(CELLS, &key).await? {
            Some(cell) => cell,
            None => {
                // A new bucket: drop this partition's buckets of the model that left the window
                // (O(buckets), once per bucket).
                self.expire_cells(state, org, contribution, watermark)
                    .await?;
                WindowCell::default()
            }
        };
        cell.add(&contribution.signal);
        state.put_json(CELLS, key, &cell)?;
        Ok(true)
    }

    /// Takes a contribution back out of its cell (gone already when its bucket expired).
    async fn retract<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        org: &OrgId,
        contribution: &Contribution,
    ) -> Result<(), ProcessError> {
        let key = cell_key(
            org,
            contribution.route.as_str(),
            contribution.model.as_str(),
            self.partition,
            contribution.bucket,
        );
        let Some(mut cell) = state.get_json::<WindowCell>(CELLS, &key).await? else {
            return Ok(());
        };
        cell.retract(&contribution.signal);
        if cell.is_empty() {
            state.delete(CELLS, key);
        } else {
            state.put_json(CELLS, key, &cell)?;
        }
        Ok(())
    }

    /// Deletes this partition's cells of (org, route, model) whose bucket left the window.
    async fn expire_cells<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        org: &OrgId,
        contribution: &Contribution,
        watermark: i64,
    ) -> Result<(), ProcessError> {
        let prefix = cell_prefix(
            org,
            contribution.route.as_str(),
            contribution.model.as_str(),
            self.partition,
        );
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = state
                .scan_prefix(CELLS, &prefix, after.as_deref(), SCAN_PAGE)
                .await?;
            let full = page.len() == SCAN_PAGE;
            for (key, _) in page {
                let bucket = key
                    .strip_prefix(prefix.as_slice())
                    .and_then(|rest| <[u8; 8]>::try_from(rest).ok())
                    .map(crate::state::unsortable);
                match bucket {
                    Some(bucket) if self.expired(bucket, watermark) => {
                        state.delete(CELLS, key.clone());
                    }
                    // Keys sort by bucket: the rest are in the window.
                    Some(_) => return Ok(()),
                    None => {}
                }
                after = Some(key);
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// Returns when a request's join state can be dropped: once its newest fact is older than
    /// `window + bucket + join_grace` (its contributions have left the window).
    fn expires_at(&self, record: &RequestRecord) -> Option<i64> {
        record.last_fact_at().map(|at| {
            at.as_micros()
                .saturating_add(self.config.join_retention_micros())
        })
    }

    /// Drops the join state of this partition's requests whose every fact is older than
    /// `window + bucket + join_grace` (their contributions have left the window), at most
    /// [`EXPIRY_PER_INPUT`] per input. Skipped while the partition's [`Sweep`] says nothing is
    /// due; else the sweep starts at its cursor, so the entries deleted before (tombstones until
    /// a compaction) are not stepped over again.
    async fn expire_requests<S: StateStore>(
        &self,
        state: &mut StagedState<'_, S>,
        watermark: i64,
    ) -> Result<(), ProcessError> {
        let before = Sweep::read(state, self.partition).await?;
        if before.next_due > watermark {
            return Ok(());
        }
        let mut sweep = before;
        let partition = self.partition.to_be_bytes();
        // Strictly after `[partition][cursor - 1]`: every entry at the cursor's time or later.
        let after = (sweep.cursor > i64::MIN).then(|| {
            let mut after = partition.to_vec();
            after.extend_from_slice(&sortable(sweep.cursor.saturating_sub(1)));
            after
        });
        let due = state
            .scan_prefix(EXPIRY, &partition, after.as_deref(), EXPIRY_PER_INPUT)
            .await?;
        // Nothing left when the page is not full; due again at once when it is.
        sweep.next_due = if due.len() < EXPIRY_PER_INPUT {
            i64::MAX
        } else {
            watermark
        };
        for (key, _) in due {
            let Some((at, org, request)) = parse_expiry_key(&key) else {
                state.delete(EXPIRY, key);
                continue;
            };
            if at > watermark {
                sweep.next_due = at;
                break;
            }
            sweep.cursor = sweep.cursor.max(at);
            state.delete(EXPIRY, key);
            let record_key = org_id_key(&org, &request);
            let record = state
                .get_json::<RequestRecord>(REQUESTS, &record_key)
                .await?;
            if record.is_some_and(|r| r.expires_at == Some(at)) {
                state.delete(REQUESTS, record_key);
            }
        }
        if sweep != before {
            sweep.write(state, self.partition);
        }
        Ok(())
    }
}

/// Where a partition's [`EXPIRY`] sweep stands (its [`EXPIRY_CURSORS`] entry): every entry of
/// the partition is at or after `cursor` and at or after `next_due`. Both are bounds, lowered
/// when an entry is indexed earlier, so they only ever cause extra reading, never a missed
/// entry; they depend on when sweeps ran, so unlike the rest of the partition's state they are
/// a function of the order of its inputs, not of their set alone (nothing published shows
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sweep {
    /// Where the next sweep starts.
    cursor: i64,
    /// No entry is due before this time: no sweep until the watermark reaches it.
    next_due: i64,
}

impl Sweep {
    /// Returns the partition's sweep state (from the start, due now, when there is none).
    async fn read<S: StateStore>(
        state: &StagedState<'_, S>,
        partition: u32,
    ) -> Result<Self, ProcessError> {
        let bytes = state.get(EXPIRY_CURSORS, &partition.to_be_bytes()).await?;
        let parsed = bytes.as_deref().and_then(|bytes| {
            let (cursor, rest) = bytes.split_first_chunk::<8>()?;
            let next_due = <[u8; 8]>::try_from(rest).ok()?;
            Some(Sweep {
                cursor: i64::from_be_bytes(*cursor),
                next_due: i64::from_be_bytes(next_due),
            })
        });
        Ok(parsed.unwrap_or(Sweep {
            cursor: i64::MIN,
            next_due: i64::MIN,
        }))
    }

    /// Accounts for an entry indexed at `at`; returns whether the bounds moved.
    fn indexed(&mut self, at: i64) -> bool {
        let before = *self;
        self.cursor = self.cursor.min(at);
        self.next_due = self.next_due.min(at);
        *self != before
    }

    fn write<S: StateStore>(&self, state: &mut StagedState<'_, S>, partition: u32) {
        let mut value = self.cursor.to_be_bytes().to_vec();
        value.extend_from_slice(&self.next_due.to_be_bytes());
        state.put(EXPIRY_CURSORS, partition.to_be_bytes().to_vec(), value);
    }
}

async fn read_route<S: StateStore>(
    state: &StagedState<'_, S>,
    key: &[u8],
) -> Result<RouteControl, ProcessError> {
    Ok(state
        .get_json::<RouteControl>(ROUTES, key)
        .await?
        .unwrap_or_default())
}

async fn on_route_configured<S: StateStore>(
    state: &mut StagedState<'_, S>,
    e: &RouteConfigured,
) -> Result<Publish, ProcessError> {
    require_nonempty("route", e.route.as_str())?;
    let key = org_id_key(&e.envelope.org, e.route.as_str());
    let mut control = read_route(state, &key).await?;
    // Log order decides between equal sequences (the topic is ordered per route); an older
    // sequence arriving late is stale.
    if control
        .configured
        .as_ref()
        .is_some_and(|c| e.sequence < c.sequence)
    {
        return Ok(Publish::No);
    }
    let configured = ConfiguredFacts {
        baseline: e.baseline_model.clone(),
        candidates: e.candidates.clone(),
        mode: e.mode,
        canary_percent: e.canary_percent,
        deleted: e.deleted,
        sequence: e.sequence,
        category: e.category.clone(),
    };
    if control.configured.as_ref() == Some(&configured) {
        return Ok(Publish::No);
    }
    control.configured = Some(configured);
    state.put_json(ROUTES, key, &control)?;
    Ok(Publish::Now)
}

async fn on_constraints<S: StateStore>(
    state: &mut StagedState<'_, S>,
    e: &ConstraintsChanged,
) -> Result<Publish, ProcessError> {
    require_nonempty("route", e.route.as_str())?;
    let key = org_id_key(&e.envelope.org, e.route.as_str());
    let mut control = read_route(state, &key).await?;
    let (next, prev) = match &control.constraints {
        Some(head) => (head.sequence + 1, head.hash.as_str()),
        None => (0, ""),
    };
    if e.sequence < next {
        // Already in the chain (a redelivery), or a fork the chain refused.
        return Ok(Publish::No);
    }
    // The same rule as the control plane: a change that does not extend the chain is never
    // applied, so the projector and every ingress agree on the constraints in force.
    if e.sequence > next || e.prev_hash != prev || e.hash != e.expected_hash() {
        tracing::warn!(
            org = %e.envelope.org,
            route = %e.route,
            sequence = e.sequence,
            expected_sequence = next,
            "ignoring a constraints change that does not extend the route's hash chain"
        );
        return Ok(Publish::No);
    }
    control.constraints = Some(ConstraintsHead {
        sequence: e.sequence,
        hash: e.hash.clone(),
        constraints: e.constraints,
    });
    state.put_json(ROUTES, key, &control)?;
    Ok(Publish::Now)
}

/// Returns whether a pins-topic record is new for the route, and records it: the topic is
/// ordered per route, so a record at or below the last offset applied is a redelivery, and one
/// with the last event id applied is the same event appended again (neither may re-arm a
/// rollback that fired since).
fn first_delivery(control: &mut RouteControl, offset: u64, event_id: EventId) -> bool {
    if control.pins_offset.is_some_and(|seen| offset <= seen)
        || control.pins_event == Some(event_id)
    {
        return false;
    }
    control.pins_offset = Some(offset);
    control.pins_event = Some(event_id);
    true
}

async fn on_pinned<S: StateStore>(
    state: &mut StagedState<'_, S>,
    e: &RoutePinned,
    offset: u64,
) -> Result<Publish, ProcessError> {
    require_nonempty("route", e.route.as_str())?;
    let key = org_id_key(&e.envelope.org, e.route.as_str());
    let mut control = read_route(state, &key).await?;
    if !first_delivery(&mut control, offset, e.envelope.event_id) {
        return Ok(Publish::No);
    }
    control.pin = Some(PinFacts {
        model: e.model.clone(),
        reason: e.reason,
        pinned_by: e.pinned_by.clone(),
        expires_at: e.expires_at,
    });
    state.put_json(ROUTES, key.clone(), &control)?;
    // Our own rollback (or any pin) read back: the pin state says it from now on.
    let rollback = state.get_json::<RollbackState>(ROLLBACK, &key).await?;
    if let Some(mut rollback) = rollback.filter(|r| r.emitted.is_some()) {
        rollback.emitted = None;
        state.put_json(ROLLBACK, key, &rollback)?;
    }
    Ok(Publish::Now)
}

async fn on_unpinned<S: StateStore>(
    state: &mut StagedState<'_, S>,
    e: &RouteUnpinned,
    offset: u64,
) -> Result<Publish, ProcessError> {
    require_nonempty("route", e.route.as_str())?;
    let key = org_id_key(&e.envelope.org, e.route.as_str());
    let mut control = read_route(state, &key).await?;
    if !first_delivery(&mut control, offset, e.envelope.event_id) {
        return Ok(Publish::No);
    }
    control.pin = None;
    state.put_json(ROUTES, key.clone(), &control)?;
    // The override (`DELETE /v1/routes/{route}/pin`) re-arms the automatic rollback; the
    // regressions already in the window are accounted for at the next evaluation, so only new
    // ones can fire it again.
    let mut rollback = state
        .get_json::<RollbackState>(ROLLBACK, &key)
        .await?
        .unwrap_or_default();
    rollback.fired = false;
    rollback.emitted = None;
    rollback.rearm_pending = true;
    state.put_json(ROLLBACK, key, &rollback)?;
    Ok(Publish::Now)
}

#[cfg(test)]
mod tests {
    use switchyard_events::{FeedbackSource, ModelName, RouteName};

    use super::*;
    use crate::stats::Signal;

    fn c(bucket: i64, bin: u16) -> Contribution {
        Contribution {
            route: RouteName::new("r"),
            model: ModelName::new("m"),
            bucket,
            signal: Signal::Score {
                source: FeedbackSource::User,
                bin,
            },
        }
    }

    #[test]
    fn diff_is_a_multiset_difference() {
        let old = vec![c(0, 1), c(0, 1), c(0, 2), c(1, 5)];
        let new = vec![c(0, 1), c(0, 3), c(1, 5), c(2, 0)];
        let (removed, added) = diff(&old, &new);
        assert_eq!(removed, vec![&c(0, 1), &c(0, 2)]);
        assert_eq!(added, vec![&c(0, 3), &c(2, 0)]);
        let (removed, added) = diff(&new, &new);
        assert!(removed.is_empty() && added.is_empty());
    }
}
