//! `switchyard keys`: API keys are facts on the control topic (`ApiKeyCreated`), so every node
//! that follows the topic knows them. The secret is generated here and only its SHA-256 is
//! recorded.
//!
//! When a server holds the data directory, the command hands the event to it over the control
//! socket; otherwise it appends to the log directly.

use std::io::Write;

use anyhow::{Context, bail};
use rand::RngCore;
use switchyard_config::{Config, LogBackend};
use switchyard_events::{
    ApiKeyCreated, ApiKeyId, Envelope, Event, EventId, KeyHash, OrgId, PartitionKey, RouteName,
    Timestamp, TraceId,
};
use switchyard_ingress::control::{KeyInfo, load_keys};
use switchyard_ingress::limits::KeyLimits;
use switchyard_log::{EventLog, LogError, Record};
use switchyard_runtime::{Clock, SystemClock};

use crate::control_socket::{self, Request, Response};

fn validate_org(org: &str) -> anyhow::Result<()> {
    let ok = !org.is_empty()
        && org.len() <= 64
        && org
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !ok {
        bail!("--org `{org}` must be 1-64 characters of a-z 0-9 - _");
    }
    Ok(())
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Builds the event for a new key and the secret that goes with it.
pub fn new_key(
    org: &str,
    admin: bool,
    default_route: Option<String>,
    label: Option<String>,
    limits: KeyLimits,
) -> anyhow::Result<(Event, String)> {
    validate_org(org)?;
    let key_id = ApiKeyId::new(format!("key_{}", random_hex(8)));
    let secret = format!("{}{}", switchyard_ingress::auth::KEY_PREFIX, random_hex(24));
    let event_id = EventId::now_v7();
    let event = Event::ApiKeyCreated(ApiKeyCreated {
        envelope: Envelope {
            event_id,
            org: OrgId::new(org),
            event_time: Timestamp::from_micros(SystemClock.now_micros()),
            trace_id: TraceId::new(event_id.to_string()),
            partition_key: PartitionKey::new(key_id.as_str()),
        },
        key_id,
        key_hash: KeyHash::of_secret(&secret),
        admin,
        default_route: default_route.map(RouteName::new),
        label,
        requests_per_minute: limits
            .requests_per_minute
            .and_then(|n| i64::try_from(n).ok()),
        tokens_per_minute: limits.tokens_per_minute.and_then(|n| i64::try_from(n).ok()),
    });
    Ok((event, secret))
}

/// Appends a control event: directly when the data directory is free, else through the
/// running server's control socket.
async fn append_control(config: &Config, event: &Event) -> anyhow::Result<()> {
    let codec = switchyard_registry::codec_for(config.schema_registry.url.as_deref()).await?;
    match crate::backends::open_log(config).await {
        Ok(log) => {
            let record = Record::new(event.partition_key().as_str(), codec.encode(event)?);
            let appended = log.append(event.topic(), vec![record]).await;
            log.close().await?;
            appended.context("cannot append to the control topic")?;
            Ok(())
        }
        Err(e) if is_locked(&e) => {
            let LogBackend::Embedded(_) = config.log.backend else {
                return Err(e);
            };
            match control_socket::call(
                &control_socket::socket_path(&config.data_dir),
                &Request::Append {
                    event: hex::encode(codec.encode(event)?),
                },
            )
            .await?
            {
                Response::Ok => Ok(()),
                Response::Error { message } => {
                    bail!("the running server refused the key: {message}")
                }
                Response::Keys { .. } => bail!("unexpected answer from the running server"),
            }
        }
        Err(e) => Err(e),
    }
}

fn is_locked(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| matches!(c.downcast_ref::<LogError>(), Some(LogError::Locked { .. })))
}

pub async fn create(
    config: &Config,
    org: &str,
    admin: bool,
    default_route: Option<String>,
    label: Option<String>,
    limits: KeyLimits,
) -> anyhow::Result<()> {
    let (event, secret) = new_key(org, admin, default_route, label, limits)?;
    append_control(config, &event).await?;
    let Event::ApiKeyCreated(created) = &event else {
        bail!("internal: not a key event")
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "created API key {} for org {} (admin: {})",
        created.key_id,
        org,
        if admin { "yes" } else { "no" }
    )?;
    writeln!(out, "the secret is shown once; only its SHA-256 is stored")?;
    writeln!(out, "{secret}")?;
    Ok(())
}

pub async fn list(config: &Config) -> anyhow::Result<()> {
    let keys: Vec<KeyInfo> = match crate::backends::open_log(config).await {
        Ok(log) => {
            let codec =
                switchyard_registry::codec_for(config.schema_registry.url.as_deref()).await?;
            let table = load_keys(&log, &codec).await;
            log.close().await?;
            table?.keys()
        }
        Err(e) if is_locked(&e) => match control_socket::call(
            &control_socket::socket_path(&config.data_dir),
            &Request::ListKeys,
        )
        .await?
        {
            Response::Keys { keys } => keys,
            Response::Error { message } => {
                bail!("the running server could not list keys: {message}")
            }
            Response::Ok => bail!("unexpected answer from the running server"),
        },
        Err(e) => return Err(e),
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<22} {:<20} {:<6} {:<8} LABEL",
        "KEY ID", "ORG", "ADMIN", "STATUS"
    )?;
    for k in keys {
        writeln!(
            out,
            "{:<22} {:<20} {:<6} {:<8} {}",
            k.key_id.as_str(),
            k.org.as_str(),
            if k.admin { "yes" } else { "no" },
            if k.revoked { "revoked" } else { "active" },
            k.label.as_deref().unwrap_or("")
        )?;
    }
    Ok(())
}
