//! The inline driver: the same state, outputs and derived ids as the runtime, without a log.

use switchyard_events::Event;
use switchyard_processor::Inline;
use switchyard_store::EmbeddedStore;

use crate::support::{COUNTS, Counter, TOTAL, read_u64, request};

#[tokio::test]
async fn inline_applies_state_and_returns_outputs_with_derived_ids() -> anyhow::Result<()> {
    let store = EmbeddedStore::temporary()?;
    let mut inline = Inline::new(store.clone());
    let counter = Counter::default();
    let first = Event::RequestReceived(request(1, &[]));
    let outputs = inline.step(&counter, &first).await?;
    assert_eq!(outputs.len(), 1);
    assert_eq!(
        outputs[0].event_id(),
        first.event_id().derive(&format!(
            "{}/ack",
            switchyard_processor::Processor::group(&counter)
        ))
    );
    inline
        .step(&counter, &Event::RequestReceived(request(2, &[])))
        .await?;
    let poison = inline
        .step(&counter, &Event::RequestReceived(request(3, &["poison"])))
        .await?;
    assert!(poison.is_empty());
    assert_eq!(inline.poisoned(), 1);
    use switchyard_store::StateStore;
    assert_eq!(
        read_u64(store.get(TOTAL, b"total").await?),
        2,
        "poison writes dropped"
    );
    let id = request(1, &[]).request_id;
    assert_eq!(
        read_u64(store.get(COUNTS, id.as_str().as_bytes()).await?),
        1
    );
    // A topic the processor does not consume is ignored.
    let other = Event::ApiKeyRevoked(switchyard_events::ApiKeyRevoked {
        envelope: request(9, &[]).envelope,
        key_id: switchyard_events::ApiKeyId::new("k"),
        reason: None,
    });
    assert!(inline.step(&counter, &other).await?.is_empty());
    Ok(())
}
