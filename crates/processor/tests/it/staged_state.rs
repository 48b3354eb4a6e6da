//! `StagedState` over the real embedded store: read-your-writes, merged scans, record rollback.

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};
use switchyard_processor::{ErrorClass, ProcessError, StagedState, require_nonempty};
use switchyard_store::{EmbeddedStore, StateStore, Table, WriteBatch};

const T: Table = Table::new("test.staged");
const OTHER: Table = Table::new("test.staged_other");

async fn store_with(entries: &[(&str, &str)]) -> Result<EmbeddedStore> {
    let store = EmbeddedStore::temporary()?;
    let mut batch = WriteBatch::new();
    for (k, v) in entries {
        batch.put(T, k.as_bytes(), v.as_bytes());
    }
    batch.put(OTHER, b"a1".as_slice(), b"other".as_slice());
    store.apply(batch).await?;
    Ok(store)
}

fn keys(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<String> {
    entries
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
}

#[tokio::test]
async fn reads_see_staged_writes_of_the_batch_and_the_record() -> Result<()> {
    let store = store_with(&[("k", "stored")]).await?;
    let mut state = StagedState::new(&store);
    ensure!(state.get(T, b"k").await? == Some(b"stored".to_vec()));
    state.put(T, b"k".as_slice(), b"record".as_slice());
    ensure!(state.get(T, b"k").await? == Some(b"record".to_vec()));
    state.commit_record();
    ensure!(state.get(T, b"k").await? == Some(b"record".to_vec()));
    state.delete(T, b"k".as_slice());
    ensure!(state.get(T, b"k").await?.is_none());
    state.rollback_record();
    ensure!(
        state.get(T, b"k").await? == Some(b"record".to_vec()),
        "a rolled-back delete leaves the batch's write"
    );
    // Nothing reached the store.
    ensure!(store.get(T, b"k").await? == Some(b"stored".to_vec()));
    let batch = state.into_write_batch();
    ensure!(batch.len() == 1);
    store.apply(batch).await?;
    ensure!(store.get(T, b"k").await? == Some(b"record".to_vec()));
    Ok(())
}

/// A batch reads each stored key from the store once; staged writes still win over what it
/// read, and a rolled-back record falls back to the stored value.
#[tokio::test]
async fn a_batch_reads_a_stored_key_once_and_staged_writes_still_win() -> Result<()> {
    let store = store_with(&[("k", "stored")]).await?;
    let mut state = StagedState::new(&store);
    ensure!(state.get(T, b"k").await? == Some(b"stored".to_vec()));
    ensure!(state.get(T, b"absent").await?.is_none());
    // Behind the batch's back (only possible in a test: a processor's keys are its own).
    let mut behind = WriteBatch::new();
    behind.put(T, b"k".as_slice(), b"changed".as_slice());
    behind.put(T, b"absent".as_slice(), b"now".as_slice());
    store.apply(behind).await?;
    ensure!(
        state.get(T, b"k").await? == Some(b"stored".to_vec()),
        "the second read went to the store"
    );
    ensure!(
        state.get(T, b"absent").await?.is_none(),
        "an absent key is remembered too"
    );
    state.put(T, b"k".as_slice(), b"record".as_slice());
    ensure!(state.get(T, b"k").await? == Some(b"record".to_vec()));
    state.rollback_record();
    ensure!(state.get(T, b"k").await? == Some(b"stored".to_vec()));
    state.delete(T, b"k".as_slice());
    state.commit_record();
    ensure!(
        state.get(T, b"k").await?.is_none(),
        "a committed delete hides the read"
    );
    // A new batch reads the store afresh.
    let fresh = StagedState::new(&store);
    ensure!(fresh.get(T, b"k").await? == Some(b"changed".to_vec()));
    Ok(())
}

#[tokio::test]
async fn scans_merge_staged_puts_and_deletes_in_key_order() -> Result<()> {
    let store = store_with(&[
        ("a1", "s"),
        ("a2", "s"),
        ("a3", "s"),
        ("a5", "s"),
        ("b1", "s"),
    ])
    .await?;
    let mut state = StagedState::new(&store);
    state.delete(T, b"a1".as_slice());
    state.put(T, b"a2".as_slice(), b"new".as_slice());
    state.commit_record();
    state.put(T, b"a4".as_slice(), b"new".as_slice());
    state.delete(T, b"a3".as_slice());
    state.put(T, b"b0".as_slice(), b"new".as_slice());

    let all = state.scan_prefix(T, b"a", None, 10).await?;
    ensure!(
        keys(&all) == ["a2=new", "a4=new", "a5=s"],
        "{:?}",
        keys(&all)
    );
    let first_two = state.scan_prefix(T, b"a", None, 2).await?;
    ensure!(
        keys(&first_two) == ["a2=new", "a4=new"],
        "{:?}",
        keys(&first_two)
    );
    let after = state.scan_prefix(T, b"a", Some(b"a2"), 10).await?;
    ensure!(keys(&after) == ["a4=new", "a5=s"], "{:?}", keys(&after));
    let past_the_prefix = state.scan_prefix(T, b"a", Some(b"a9"), 10).await?;
    ensure!(past_the_prefix.is_empty());
    let beyond = state.scan_prefix(T, b"a", Some(b"b"), 10).await?;
    ensure!(beyond.is_empty());
    let everything = state.scan_prefix(T, b"", None, 100).await?;
    ensure!(
        keys(&everything) == ["a2=new", "a4=new", "a5=s", "b0=new", "b1=s"],
        "other tables stay out: {:?}",
        keys(&everything)
    );
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Item {
    name: String,
    count: u32,
}

#[tokio::test]
async fn json_entries_round_trip_through_staged_and_stored_state() -> Result<()> {
    let store = store_with(&[]).await?;
    let mut state = StagedState::new(&store);
    ensure!(state.get_json::<Item>(T, b"k").await?.is_none());
    let item = Item {
        name: "a".to_owned(),
        count: 3,
    };
    state.put_json(T, b"k".as_slice(), &item)?;
    ensure!(state.get_json::<Item>(T, b"k").await? == Some(item.clone()));
    state.commit_record();
    store.apply(state.into_write_batch()).await?;
    let state = StagedState::new(&store);
    ensure!(state.get_json::<Item>(T, b"k").await? == Some(item));
    Ok(())
}

#[tokio::test]
async fn a_stored_entry_that_does_not_parse_is_fatal() -> Result<()> {
    let store = store_with(&[("bad", "not json")]).await?;
    let state = StagedState::new(&store);
    let Err(error) = state.get_json::<Item>(T, b"bad").await else {
        anyhow::bail!("a corrupt entry parsed");
    };
    ensure!(error.class() == ErrorClass::Fatal, "{error:?}");
    ensure!(error.to_string().contains(T.name()), "{error}");
    Ok(())
}

#[test]
fn an_empty_required_field_is_poison() {
    assert!(require_nonempty("org", "acme").is_ok());
    let error = require_nonempty("org", "").expect_err("empty");
    assert!(matches!(&error, ProcessError::Poison { reason } if reason == "org is empty"));
}
