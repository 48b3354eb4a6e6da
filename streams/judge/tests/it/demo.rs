//! The demo provider as the judge, as `make run` uses it: no keys, a simulated grade.

use anyhow::Result;
use std::collections::HashMap;
use switchyard_config::Config;
use switchyard_events::JudgeOutcome;
use switchyard_judge::{DEFAULT_ROUTE, processor};
use switchyard_processor::Inline;
use switchyard_providers::{AnyProvider, Catalog, demo::DemoProvider};
use switchyard_store::EmbeddedStore;

use crate::support::{T0, ok, request};

#[tokio::test]
async fn the_demo_provider_judges_with_the_default_configuration() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = Config::defaults_in(dir.path())?.judge;
    assert_eq!(config.model, "demo/large");
    config.sample_rate = 1.0;
    let providers = HashMap::from([(
        "demo".to_owned(),
        AnyProvider::Demo(DemoProvider::instant()),
    )]);
    let judge = processor(&config, &providers, &Catalog::shipped()?)?;
    let mut inline = Inline::new(EmbeddedStore::temporary()?);
    inline
        .step(
            &judge,
            &request("default", "r1", DEFAULT_ROUTE, Some("user: hi"), T0),
        )
        .await?;
    let out = inline
        .step(&judge, &ok("default", "r1", "demo/small", T0 + 1))
        .await?;
    let [switchyard_events::Event::JudgeScored(judged)] = out.as_slice() else {
        anyhow::bail!("expected one judgement, got {out:?}");
    };
    assert!(
        matches!(judged.outcome, JudgeOutcome::Scored { .. }),
        "{judged:?}"
    );
    assert_eq!(judged.judge_model.as_str(), "demo/large");
    // The demo models are priced in the catalog, so the spend cap applies.
    assert!(judged.cost_usd.is_some_and(|c| c.get() > 0.0));

    // A judge model whose provider is not configured is a setup error naming both.
    let err = processor(&config, &HashMap::new(), &Catalog::shipped()?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("demo/large") && err.contains("demo"), "{err}");
    config.rubric_version = "v0".into();
    assert!(processor(&config, &providers, &Catalog::shipped()?).is_err());
    Ok(())
}
