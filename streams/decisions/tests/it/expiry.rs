//! Parked fragments wait at most `PENDING_TTL` of event time for their decision: feedback about
//! an id that never comes does not stay in the store forever.

use anyhow::{Result, ensure};
use switchyard_decisions::PENDING_TTL;
use switchyard_decisions::state::{PENDING_BY_DECISION, PENDING_BY_REQUEST};
use switchyard_events::{Event, FeedbackSource};
use switchyard_store::{EmbeddedStore, StateStore};

use crate::support::{DecisionSpec, T0, decision, dump, feedback, fold, judged};

fn ttl() -> i64 {
    i64::try_from(PENDING_TTL.as_micros()).unwrap_or(i64::MAX)
}

async fn parked(store: &EmbeddedStore) -> Result<usize> {
    let mut n = 0;
    for table in [PENDING_BY_DECISION, PENDING_BY_REQUEST] {
        n += store.scan_prefix(table, b"", None, usize::MAX).await?.len();
    }
    Ok(n)
}

#[tokio::test]
async fn fragments_whose_decision_never_comes_are_dropped_after_the_ttl() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = EmbeddedStore::open_dir(dir.path())?;
    // Feedback and a judge score about decisions that never arrive.
    let orphans: Vec<Event> = vec![
        feedback(
            "acme",
            "fb-1",
            "req-ghost",
            None,
            FeedbackSource::User,
            0.9,
            T0,
        )
        .into(),
        judged(
            "acme",
            "j-1",
            "dec-ghost",
            "req-ghost-2",
            None,
            Some(0.5),
            T0 + 1,
        )
        .into(),
    ];
    fold(&store, &orphans, &[1]).await?;
    ensure!(parked(&store).await? == 2, "both wait for their decision");

    // Just before the TTL runs out, nothing is dropped.
    let before = feedback(
        "acme",
        "fb-2",
        "req-other",
        None,
        FeedbackSource::User,
        0.5,
        T0 + ttl() - 1,
    );
    fold(&store, &[before.into()], &[1]).await?;
    ensure!(parked(&store).await? == 3, "nothing due yet");

    // Past it, the two orphans go; the newer fragment stays.
    let after = feedback(
        "acme",
        "fb-3",
        "req-other",
        None,
        FeedbackSource::User,
        0.5,
        T0 + ttl() + 2,
    );
    fold(&store, &[after.into()], &[1]).await?;
    ensure!(parked(&store).await? == 1, "the orphans were dropped");

    // A decision that does arrive in time still takes its fragments in.
    let decided = decision(&DecisionSpec {
        org: "acme",
        decision: "dec-other",
        request: "req-other",
        session: None,
        route: "support",
        time: T0 + ttl() + 3,
    });
    fold(&store, &[decided.into()], &[1]).await?;
    ensure!(parked(&store).await? == 0, "taken in by its decision");
    let tables = dump(&store).await?;
    let record = tables
        .get("decisions.records")
        .and_then(|rows| rows.first())
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default();
    ensure!(
        record.contains("fb-2") && record.contains("fb-3"),
        "the record has both ratings: {record}"
    );
    Ok(())
}
