//! `switchyard sim`: the routing simulator's stdio adapter (see `crates/sim`).

use anyhow::Context;
use switchyard_config::Config;

use crate::cli::SimArgs;

/// Serves the protocol on stdin/stdout; a summary goes to stderr at the end.
pub async fn run(config: &Config, args: &SimArgs) -> anyhow::Result<()> {
    let mut projector = switchyard_projector::ProjectorConfig::from_config(&config.routing, &[]);
    projector.default_constraints.min_confidence = Some(args.min_confidence);
    projector.default_constraints.rollback_threshold = Some(args.rollback_threshold);
    // The simulator's requests are about a minute apart in virtual time; a snapshot every
    // five virtual minutes keeps the table fresh relative to feedback that arrives minutes to
    // hours later, and keeps the run fast.
    projector.publish_interval = std::time::Duration::from_secs(args.publish_interval_s);
    projector.window = std::time::Duration::from_secs(args.window_hours * 3600);
    projector.join_grace = projector.window;
    projector.bucket = std::time::Duration::from_secs(args.bucket_hours * 3600);
    projector.rollback_pin = Some(args.rollback_pin_hours.map_or(projector.window, |h| {
        std::time::Duration::from_secs(h * 3600)
    }));
    let processors = switchyard_sim::Loop {
        session_nps: switchyard_session_nps::processor(switchyard_session_nps::SessionNpsConfig {
            window: config.feedback.nps_window,
            retention: config.feedback.session_retention,
        }),
        projector: switchyard_projector::processor(projector)
            .map_err(|e| anyhow::anyhow!("the projector: {e}"))?,
    };
    let options = switchyard_sim::SimOptions {
        min_confidence: args.min_confidence,
        rollback_threshold: args.rollback_threshold,
        explore_fraction: args.explore,
        explore_until_samples: args.explore_until,
        debug_every: args.debug_every,
        ..switchyard_sim::SimOptions::default()
    };
    let mut sim = switchyard_sim::Sim::new(options, processors)?;
    let stdin = std::io::stdin().lock();
    let stdout = std::io::stdout().lock();
    sim.serve(stdin, stdout)
        .await
        .context("the simulator session")?;
    let s = sim.summary();
    eprintln!(
        "switchyard sim: {} requests, {} routed away from the default ({:.1}%), {} routing-table snapshots, {} automatic rollbacks, {} poison inputs; served {:?}",
        s.requests,
        s.routed,
        100.0 * s.routed as f64 / s.requests.max(1) as f64,
        s.snapshots,
        s.rollbacks,
        s.poisoned,
        s.served
    );
    Ok(())
}
