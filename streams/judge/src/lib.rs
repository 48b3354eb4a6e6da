//! switchyard-judge: LLM-as-judge.
//!
//! Place in the pipeline: consumes `requests` (`RequestReceived`, for the prompt) and
//! `responses` (`ResponseCompleted`, for the answer) through the consumer group [`GROUP`],
//! samples responses per route, asks a judge model through the provider layer
//! (`switchyard-providers`) to grade each sampled answer with a versioned [`rubric`], and emits
//! one `JudgeScored` per graded response to `judge-scores`, where the decisions read model, the
//! regression windows and the projector read it. It runs in the processor runtime
//! (`switchyard-processor`): a task of `switchyard serve`, or the role `stream judge`.
//!
//! # What is judged
//!
//! A response is a quality sample when its status is `ok` or `truncated` (errors, refusals,
//! timeouts and cancellations say nothing about answer quality). It is **sampled** when
//! [`sample_point`]`(request id)` is below its route's `judge.sample_rate` (per-route
//! overrides in `[judge.routes.<name>]`): a hash of the request id, so a redelivered or
//! replayed response is sampled exactly when it was the first time, and raising a rate keeps
//! what was sampled before. A shadow mirror (`shadow: true`, request id `<original>#mirror`)
//! is sampled with its original request, so both answers of a mirrored pair are graded; its
//! `JudgeScored` names the mirror's request id and the **shadow model** (`served_model`) as the
//! graded model.
//!
//! Grading needs the conversation and the answer: `RequestReceived.prompt_text` and
//! `ResponseCompleted.completion_text`, which ingress fills only for routes that capture text
//! (`switchyard_config::RouteConfig::text_capture`; see `[judge]` in `default.toml` for the
//! privacy implication). A sampled pair without both texts is skipped and counted
//! ([`state::DayUsage::skipped_no_text`]).
//!
//! # The join
//!
//! The route is on the request, the answer on the response, and the two topics are read in no
//! particular order, so each side waits for the other in state, for `judge.pending_ttl` of
//! event time: a sampled request's prompt in [`state::PROMPTS`] (a request sampled on no route
//! is not kept; one sampled at the largest rate of any route but not on its own is kept as a
//! text-less marker, so its responses are dropped on arrival), a response read first in
//! [`state::WAITING`]. Whichever side completes the pair grades it. Rows expire by event time:
//! every input drops the rows due at its own event time, so a response more than the TTL after
//! its request is not judged. Both topics are keyed by session (else request) id, so a request
//! and its response share a partition number and one member owns both; a shadow mirror outside
//! a session is keyed by its own request id and may be read by another member, which is
//! harmless in single-node mode (one member) and, in the distributed mode, can lose the pair
//! when both members process their halves at the same moment.
//!
//! # Grading
//!
//! The judge model is asked with the rubric (a system prompt carrying
//! `switchyard_providers::demo::JUDGE_RUBRIC_MARKER` and the version, and the conversation and
//! the answer as delimited data), at temperature 0, with `response_format: json_schema` when
//! the catalog says the model accepts it. [`rubric::Rubric::parse`] reads the grade
//! robustly (code fences and prose tolerated; out-of-range, non-integer, non-finite,
//! missing and conflicting scores rejected). An answer that does not parse is asked again,
//! quoting it and saying why, up to `judge.max_attempts` calls; then the response gets a
//! `JudgeScored` with `outcome: Failed { reason }`. A failure is never recorded as a score.
//! A grade `g` of the 1..=10 scale is published normalised, `(g - 1) / 9`.
//!
//! Provider failures are classified: 429, 5xx, timeouts, dropped connections, and also
//! rejected credentials and unknown models (configuration an operator fixes) are
//! [`ProcessError::Transient`](switchyard_processor::ProcessError): the runtime retries the
//! whole batch with backoff, so nothing is skipped because the judge is down. A request the
//! judge rejects (400, context length) is recorded as a failure at once; an upstream body that
//! does not parse counts as a malformed attempt.
//!
//! # Spend cap
//!
//! Per org and **UTC day of the response's event time** (never the wall clock, so a replay
//! spends the same way), [`state::DAYS`] holds the spend (the judge model's catalog price
//! times each call's usage) and counts. Before grading, a day whose spend reached
//! `judge.daily_cap_usd` (or that saw a call without a known price) skips the response and
//! counts it ([`state::DayUsage::skipped_over_cap`]); the next day starts from zero. A
//! grading in progress finishes its attempts, so a day can end slightly above the cap.
//! [`day_usage`] reads a day's figures.
//!
//! # Self-preference
//!
//! LLM judges tend to prefer answers of their own family. [`sample::model_family`] groups
//! models by vendor (`gpt-*`/`o3-*` are `openai`, `claude-*` `anthropic`, ...; other names by
//! their first word, so `demo/large` and `demo/small` differ). `JudgeScored` has no labels, but
//! it names both `model` and `judge_model`, so a consumer can tell a same-family grade with
//! [`sample::same_family`] and discount it. `judge.self_preference = "judge"` (default) grades
//! same-family answers anyway (the default judge, `demo/large`, would otherwise never grade the
//! default route's baseline); `"skip"` skips and counts them
//! ([`state::DayUsage::skipped_self`]). With real traffic, pick a judge of another family.
//!
//! # Outputs, ids and delivery semantics
//!
//! Output event ids come from [`Output::emit`](switchyard_processor::Output::emit): derived from
//! the input that completed the pair, with the purpose `judge` (the response) or
//! `judge/<response request id>` (the request, which may complete two pairs: the response and
//! its mirror). The **judgement id** is [`judgement_id`]`(org, response request id, rubric
//! version)`: one per response and rubric, however often it is emitted. The envelope takes the
//! response's event time, trace id and partition key.
//!
//! A handled response is marked in [`state::JUDGED`] in the same batch as its output, so a
//! redelivered response (or request) after the batch was applied grades nothing again. The
//! judge's answer is not a function of the input: if the process crashes after the runtime
//! appended a batch's outputs and before it applied its state, the batch is graded again on
//! restart and the judgement re-emitted under the same event id and judgement id, possibly
//! with another grade (and paid for twice). Consumers deduplicate by judgement id (the
//! decisions read model does). Within one process, a batch retried after a provider failure
//! reuses the replies it already got (see [`JudgeProcessor`]) instead of paying again.
//!
//! Keep the runtime's `batch_size` small for this processor (the gateway uses
//! [`OPTIONS_BATCH_SIZE`]): a batch is graded call by call, and a provider failure retries it
//! whole.
//!
//! # State
//!
//! See [`state`]. Prompts, waiting responses and handled marks expire by event time; the
//! per-day figures are kept (one small row per org and day).

mod model;
mod process;
pub mod rubric;
pub mod sample;
pub mod state;

use std::collections::HashMap;

pub use model::{JudgeError, JudgeModel};
pub use process::{DEFAULT_ROUTE, GROUP, INPUTS, JudgeProcessor};
pub use sample::{judgement_id, sample_point, sampled};
use switchyard_config::JudgeConfig;
use switchyard_events::OrgId;
use switchyard_log::EventLog;
use switchyard_processor::{ProcessorDeps, ProcessorOptions, ProcessorRuntime, RunError};
use switchyard_providers::{AnyProvider, Catalog};
use switchyard_runtime::CancellationToken;
use switchyard_store::{StateStore, StoreError};

/// The batch size the judge runs with: each record may make judge calls, and a provider
/// failure retries the whole batch.
pub const OPTIONS_BATCH_SIZE: usize = 16;

/// Returns the judge as a [`Processor`](switchyard_processor::Processor), asking
/// `config.model` through the gateway's `providers` (by `[providers.<name>]` name), priced by
/// `catalog`.
pub fn processor(
    config: &JudgeConfig,
    providers: &HashMap<String, AnyProvider>,
    catalog: &Catalog,
) -> Result<JudgeProcessor, JudgeError> {
    let judge = JudgeModel::resolve(&config.model, providers, catalog)?;
    JudgeProcessor::new(config.clone(), judge)
}

/// Returns the runtime options the judge runs with: the defaults with
/// [`OPTIONS_BATCH_SIZE`].
pub fn options() -> ProcessorOptions {
    ProcessorOptions {
        batch_size: OPTIONS_BATCH_SIZE,
        ..ProcessorOptions::default()
    }
}

/// Runs the judge until `shutdown` is cancelled: the role `stream judge` (and one task of
/// `switchyard serve`). With `judge.enabled = false` it consumes nothing and waits for
/// shutdown.
pub async fn run<L: EventLog, S: StateStore>(
    deps: ProcessorDeps<L, S>,
    options: ProcessorOptions,
    config: JudgeConfig,
    judge: JudgeModel,
    shutdown: CancellationToken,
) -> Result<(), RunError> {
    if !config.enabled {
        tracing::info!("the judge is disabled (judge.enabled = false)");
        shutdown.cancelled().await;
        return Ok(());
    }
    let processor =
        JudgeProcessor::new(config, judge).map_err(|e| RunError::Invalid(e.to_string()))?;
    ProcessorRuntime::new(processor, deps, options)
        .run(shutdown)
        .await
}

/// Returns the judge's spend and counts for `org` on UTC day `day` (days since the Unix epoch,
/// [`sample::utc_day`] of an event time), as applied to `store`.
pub async fn day_usage<S: StateStore>(
    store: &S,
    org: &OrgId,
    day: i64,
) -> Result<Option<state::DayUsage>, StoreError> {
    let Some(bytes) = store.get(state::DAYS, &state::day_key(org, day)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Invalid(format!("stored judge.days entry does not parse: {e}")))
}
