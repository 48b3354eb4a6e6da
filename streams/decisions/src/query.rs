//! [`DecisionQueries`]: org-scoped reads of the decisions read model.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use switchyard_events::{DecisionId, OrgId, RequestId, RouteName, SessionId, Timestamp};
use switchyard_store::{StateStore, StoreError};

use crate::record::DecisionRecord;
use crate::state::{
    BY_REQUEST, Index, IndexValue, RECORDS, StoredDecision, index_prefix, newest_first, org_key,
    parse_index_key,
};

/// The largest page [`DecisionQueries::list`] returns.
pub const MAX_LIMIT: usize = 500;

/// The most index entries one [`DecisionQueries::list`] call reads, by default.
pub const DEFAULT_SCAN_BUDGET: usize = 10_000;

/// Index entries read per store scan.
const SCAN_CHUNK: usize = 512;

/// The cursor format's version byte.
const CURSOR_VERSION: u8 = 1;

/// Errors of [`DecisionQueries`].
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The state store failed.
    #[error("failed to read the decisions read model")]
    Store(#[from] StoreError),
    /// The cursor was not returned by a `list` of this org with this route/session filter.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The filter is invalid.
    #[error("invalid filter: {0}")]
    InvalidFilter(String),
    /// A stored entry does not parse (a bug, or a store written by an incompatible version).
    #[error("stored decision data is corrupt: {0}")]
    Corrupt(String),
}

impl QueryError {
    /// Returns whether the caller's request is at fault (HTTP 400), not the server.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            QueryError::InvalidCursor | QueryError::InvalidFilter(_)
        )
    }

    /// Returns whether retrying may help (HTTP 503).
    pub fn is_transient(&self) -> bool {
        matches!(self, QueryError::Store(e) if e.is_transient())
    }

    /// Returns a low-cardinality label for error metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            QueryError::Store(_) => "store",
            QueryError::InvalidCursor => "invalid_cursor",
            QueryError::InvalidFilter(_) => "invalid_filter",
            QueryError::Corrupt(_) => "corrupt",
        }
    }
}

/// Which decisions [`DecisionQueries::list`] returns. Every field is optional; set fields are
/// combined with AND. Deserialises from a query string (`?route=support&latency_above_ms=2000`)
/// and rejects unknown fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecisionFilter {
    /// Only decisions of this route (served by the route index).
    pub route: Option<RouteName>,
    /// Only decisions of this session (served by the session index; wins over the route
    /// index when both are set, and the route is then checked per entry).
    pub session: Option<SessionId>,
    /// Only decisions taken at or after this time (microseconds since the epoch), inclusive.
    pub from: Option<Timestamp>,
    /// Only decisions taken before this time, exclusive.
    pub to: Option<Timestamp>,
    /// Low quality: only decisions whose mean score (all feedback sources and judge scores,
    /// normalised to `0..=1`) is below this. Decisions without any score do not match.
    pub quality_below: Option<f64>,
    /// High latency: only decisions whose response took longer than this many milliseconds.
    /// Decisions without a response yet do not match.
    pub latency_above_ms: Option<i64>,
}

impl DecisionFilter {
    fn validate(&self) -> Result<(), QueryError> {
        if let Some(threshold) = self.quality_below
            && !threshold.is_finite()
        {
            return Err(QueryError::InvalidFilter(
                "quality_below must be a finite number".into(),
            ));
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return Err(QueryError::InvalidFilter(
                "from must not be after to".into(),
            ));
        }
        Ok(())
    }

    /// The filters an index entry can answer (route, latency, quality).
    fn matches_facts(&self, route: &RouteName, latency: Option<i64>, quality: Option<f64>) -> bool {
        self.route.as_ref().is_none_or(|wanted| wanted == route)
            && self
                .latency_above_ms
                .is_none_or(|threshold| latency.is_some_and(|l| l > threshold))
            && self
                .quality_below
                .is_none_or(|threshold| quality.is_some_and(|q| q < threshold))
    }

    /// Every filter, against a record.
    fn matches_record(&self, record: &DecisionRecord) -> bool {
        self.matches_facts(
            &record.route,
            record.response.as_ref().map(|r| r.latency_ms),
            record.feedback.mean,
        ) && self
            .session
            .as_ref()
            .is_none_or(|wanted| record.session_id.as_ref() == Some(wanted))
            && self.from.is_none_or(|from| record.decided_at >= from)
            && self.to.is_none_or(|to| record.decided_at < to)
    }

    fn index(&self) -> (Index, Option<&str>) {
        match (&self.session, &self.route) {
            (Some(session), _) => (Index::Session, Some(session.as_str())),
            (None, Some(route)) => (Index::Route, Some(route.as_str())),
            (None, None) => (Index::Time, None),
        }
    }
}

/// One page of [`DecisionQueries::list`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page {
    /// Matching decisions, newest first.
    pub items: Vec<DecisionRecord>,
    /// Pass to the next call to continue after this page; `None` when nothing is left. A page
    /// can hold fewer than `limit` items and still have a cursor: the scan budget ran out
    /// before enough entries matched (only with filters the index does not serve).
    pub next_cursor: Option<String>,
}

/// Reads decisions for one org at a time: by id, by request id, or as a filtered, paginated
/// list, newest first.
///
/// Every method takes the caller's org and only ever reads keys of that org: a decision of
/// another org is "not found", and a cursor of another org is invalid. The HTTP layer should
/// map `Ok(None)` to 404, [`QueryError::is_client_error`] to 400 and
/// [`QueryError::is_transient`] to 503.
///
/// ```ignore
/// let queries = DecisionQueries::new(store.clone());
/// let record = queries.lookup(&caller.org, id_from_path).await?;   // GET /v1/decisions/{id}
/// let page = queries
///     .list(&caller.org, &filter, cursor.as_deref(), limit)         // GET /v1/decisions
///     .await?;
/// ```
#[derive(Debug, Clone)]
pub struct DecisionQueries<S> {
    store: S,
    scan_budget: usize,
}

impl<S: StateStore> DecisionQueries<S> {
    /// Returns queries over the store the read model is applied to.
    pub fn new(store: S) -> Self {
        Self {
            store,
            scan_budget: DEFAULT_SCAN_BUDGET,
        }
    }

    /// Sets the most index entries one `list` call reads (at least 1).
    #[must_use]
    pub fn with_scan_budget(mut self, entries: usize) -> Self {
        self.scan_budget = entries.max(1);
        self
    }

    /// Returns the decision `id` of `org`, or `None` when `org` has no such decision (whether
    /// or not another org has one with that id).
    pub async fn get(
        &self,
        org: &OrgId,
        id: &DecisionId,
    ) -> Result<Option<DecisionRecord>, QueryError> {
        Ok(self.stored(org, id).await?.map(|stored| stored.to_record()))
    }

    /// Returns the decision of request `id` of `org` (the `id` of a chat completion, the
    /// `x-request-id` header).
    pub async fn get_by_request(
        &self,
        org: &OrgId,
        id: &RequestId,
    ) -> Result<Option<DecisionRecord>, QueryError> {
        let Some(decision) = self
            .store
            .get(BY_REQUEST, &org_key(org, id.as_str()))
            .await?
        else {
            return Ok(None);
        };
        let decision = String::from_utf8(decision)
            .map_err(|_| QueryError::Corrupt("decision id is not UTF-8".into()))?;
        self.get(org, &DecisionId::new(decision)).await
    }

    /// Returns the decision whose decision id, else request id, is `id` (what
    /// `GET /v1/decisions/{id}` accepts: either header value a client saw).
    pub async fn lookup(
        &self,
        org: &OrgId,
        id: &str,
    ) -> Result<Option<DecisionRecord>, QueryError> {
        if let Some(record) = self.get(org, &DecisionId::new(id)).await? {
            return Ok(Some(record));
        }
        self.get_by_request(org, &RequestId::new(id)).await
    }

    /// Returns up to `limit` (1..=[`MAX_LIMIT`], clamped) decisions of `org` matching
    /// `filter`, newest first, continuing after `cursor` (from a previous page of the same org
    /// and route/session filter).
    ///
    /// The scan uses the session index when `filter.session` is set, else the route index when
    /// `filter.route` is set, else the org's time index, each bounded by the time window; the
    /// latency and quality filters are applied to the index entries as they are read. One call
    /// reads at most the scan budget of entries ([`DEFAULT_SCAN_BUDGET`]); when it runs out the
    /// page is returned as is, with a cursor to continue.
    pub async fn list(
        &self,
        org: &OrgId,
        filter: &DecisionFilter,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page, QueryError> {
        filter.validate()?;
        let limit = limit.clamp(1, MAX_LIMIT);
        let (index, qualifier) = filter.index();
        let prefix = index_prefix(org, qualifier);
        let table = index.table();

        // Start: strictly after every entry at or after `to` (newest first), and after the
        // cursor when it is further on.
        let mut after: Option<Vec<u8>> = filter.to.map(|to| {
            let mut key = prefix.clone();
            key.extend_from_slice(&newest_first(to));
            // Above any length prefix of a decision id, so entries *at* `to` are skipped too.
            key.extend_from_slice(&[0xFF; 4]);
            key
        });
        if let Some(cursor) = cursor {
            let position = decode_cursor(cursor, index, &prefix)?;
            if after.as_ref().is_none_or(|start| position > *start) {
                after = Some(position);
            }
        }

        let mut matched: Vec<DecisionId> = Vec::new();
        let mut scanned = 0usize;
        let mut last_key: Option<Vec<u8>> = None;
        let mut exhausted = false;
        'scan: while matched.len() < limit {
            let budget = self.scan_budget.saturating_sub(scanned);
            if budget == 0 {
                break;
            }
            let want = budget.min(SCAN_CHUNK);
            let chunk = self
                .store
                .scan_prefix(table, &prefix, after.as_deref(), want)
                .await?;
            let got = chunk.len();
            for (key, value) in chunk {
                scanned += 1;
                let (time, decision) = parse_index_key(&prefix, &key)
                    .ok_or_else(|| QueryError::Corrupt(format!("malformed {table} key")))?;
                if filter.from.is_some_and(|from| time < from) {
                    exhausted = true;
                    break 'scan;
                }
                let facts: IndexValue = serde_json::from_slice(&value)
                    .map_err(|e| QueryError::Corrupt(format!("{table} entry: {e}")))?;
                last_key = Some(key);
                if filter.matches_facts(&facts.route, facts.latency_ms, facts.quality_mean) {
                    matched.push(decision);
                    if matched.len() == limit {
                        break 'scan;
                    }
                }
            }
            if got < want {
                exhausted = true;
                break;
            }
            after.clone_from(&last_key);
        }

        let mut items = Vec::with_capacity(matched.len());
        for decision in matched {
            // The record and its index entries are written in one batch, but read here one by
            // one: check the record itself, which may have changed since the entry was read.
            if let Some(stored) = self.stored(org, &decision).await? {
                let record = stored.to_record();
                if filter.matches_record(&record) {
                    items.push(record);
                }
            }
        }
        let next_cursor = if exhausted {
            None
        } else {
            last_key.map(|key| encode_cursor(index, &key))
        };
        Ok(Page { items, next_cursor })
    }

    async fn stored(
        &self,
        org: &OrgId,
        id: &DecisionId,
    ) -> Result<Option<StoredDecision>, QueryError> {
        let Some(bytes) = self.store.get(RECORDS, &org_key(org, id.as_str())).await? else {
            return Ok(None);
        };
        let stored: StoredDecision = serde_json::from_slice(&bytes)
            .map_err(|e| QueryError::Corrupt(format!("decision record: {e}")))?;
        Ok(Some(stored))
    }
}

/// A cursor is `version, index tag, last index key read`, base64url without padding. The key
/// includes the org and the route or session, so it is checked against the caller's scan.
fn encode_cursor(index: Index, key: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(2 + key.len());
    bytes.push(CURSOR_VERSION);
    bytes.push(index.tag());
    bytes.extend_from_slice(key);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_cursor(cursor: &str, index: Index, prefix: &[u8]) -> Result<Vec<u8>, QueryError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| QueryError::InvalidCursor)?;
    match bytes.as_slice() {
        [CURSOR_VERSION, tag, key @ ..] if *tag == index.tag() && key.starts_with(prefix) => {
            Ok(key.to_vec())
        }
        _ => Err(QueryError::InvalidCursor),
    }
}
