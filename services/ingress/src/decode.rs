//! Decoding for the followers of the log (control plane, routing table, usage): a record whose
//! schema id the schema registry cannot resolve right now is waited on, not skipped. Skipping it
//! would lose a key, a pin or a routing-table snapshot on this replica for good, since a follower
//! never reads a record twice.

use std::time::Duration;

use switchyard_events::{Codec, CodecError, Event};
use tokio_util::sync::CancellationToken;

/// First wait after a transient failure; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Decodes `bytes`, retrying with backoff while the failure is transient (the registry is
/// unreachable). Returns `None` when `shutdown` fires first; otherwise the event, or an error
/// that no retry can mend (the caller skips and counts that record).
pub async fn decode_patiently(
    codec: &Codec,
    bytes: &[u8],
    shutdown: &CancellationToken,
) -> Option<Result<Event, CodecError>> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        match codec.decode(bytes) {
            Err(e) if e.is_transient() => {
                attempts += 1;
                if attempts == 1 || attempts.is_power_of_two() {
                    tracing::warn!(error = %e, attempts, "cannot decode a followed record yet; retrying");
                }
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            other => return Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use switchyard_events::{
        Envelope, EventId, OrgId, PartitionKey, RouteName, RouteUnpinned, SchemaResolver,
        Timestamp, TraceId,
    };

    use super::*;

    /// A registry that is down for its first `failures` lookups.
    #[derive(Debug)]
    struct Flaky {
        failures: AtomicU32,
    }

    impl SchemaResolver for Flaky {
        fn schema_text(&self, _id: u32) -> Result<Option<String>, String> {
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err("connection refused".into());
            }
            Ok(Some(
                include_str!("../../../schemas/avro/route_unpinned/RouteUnpinned.v1.avsc").into(),
            ))
        }
    }

    fn unpinned() -> Event {
        Event::RouteUnpinned(RouteUnpinned {
            envelope: Envelope {
                event_id: EventId::now_v7(),
                org: OrgId::new("acme"),
                event_time: Timestamp::from_micros(1_764_000_000_000_000),
                trace_id: TraceId::new("t"),
                partition_key: PartitionKey::new("acme/support"),
            },
            route: RouteName::new("support"),
            unpinned_by: "admin".into(),
            reason: None,
        })
    }

    /// The event framed with a schema id only the registry knows.
    fn framed_with_registry_id(event: &Event) -> Result<Vec<u8>, CodecError> {
        let mut bytes = Codec::new()?.encode(event)?;
        if let Some(id) = bytes.get_mut(1..5) {
            id.copy_from_slice(&900_001u32.to_be_bytes());
        }
        Ok(bytes)
    }

    #[tokio::test]
    async fn a_record_is_decoded_once_the_registry_answers_not_skipped() -> anyhow::Result<()> {
        let resolver = Arc::new(Flaky {
            failures: AtomicU32::new(3),
        });
        let codec = Codec::with_resolver(HashMap::new(), resolver.clone())?;
        let event = unpinned();
        let bytes = framed_with_registry_id(&event)?;
        assert!(codec.decode(&bytes).is_err_and(|e| e.is_transient()));
        let decoded = decode_patiently(&codec, &bytes, &CancellationToken::new()).await;
        assert_eq!(decoded.transpose()?, Some(event));
        assert_eq!(resolver.failures.load(Ordering::SeqCst), 0);
        Ok(())
    }

    #[tokio::test]
    async fn a_permanent_error_returns_at_once_and_shutdown_ends_the_wait() -> anyhow::Result<()> {
        let codec = Codec::new()?;
        let garbage = decode_patiently(&codec, b"\x07oops", &CancellationToken::new()).await;
        assert!(matches!(garbage, Some(Err(CodecError::BadMagic { .. }))));

        let down = Arc::new(Flaky {
            failures: AtomicU32::new(u32::MAX),
        });
        let codec = Codec::with_resolver(HashMap::new(), down)?;
        let bytes = framed_with_registry_id(&unpinned())?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stop.cancel();
        });
        assert!(decode_patiently(&codec, &bytes, &shutdown).await.is_none());
        Ok(())
    }
}
