//! Loader tests. Pure ones pass variables through [`EnvVars::from_vars`]; the ones that need
//! real files or the process environment run inside `figment::Jail` (a temp dir and an env
//! snapshot, restored afterwards).
#![expect(
    clippy::result_large_err,
    reason = "figment::Jail closures must return figment::Result, whose error is large"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use figment::Jail;

use super::*;

fn no_files() -> Vec<PathBuf> {
    Vec::new()
}

/// Runs `f` in a jail and turns its `figment::Error` result into a test failure.
fn jail(f: impl FnOnce(&mut Jail) -> figment::Result<()>) {
    Jail::expect_with(f);
}

#[test]
fn default_toml_parses_and_validates() {
    let config = load(&no_files(), EnvVars::none()).unwrap();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.server.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(10));
    assert_eq!(
        config.log.backend,
        LogBackend::Embedded(config.data_dir.join("log"))
    );
    assert_eq!(
        config.store.backend,
        StoreBackend::Embedded(config.data_dir.join("store"))
    );
    assert_eq!(config.log.partitions, 8);
    assert_eq!(config.log.fsync, FsyncMode::Group);
    assert_eq!(config.log.group_commit.max_records, 8192);
    assert_eq!(config.log.group_commit.max_bytes, 8 * 1024 * 1024);
    assert_eq!(config.log.group_commit.linger, Duration::from_millis(1));
    assert_eq!(config.log.retention, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(config.log.topic_prefix, "switchyard.");
    assert_eq!(config.telemetry.log_format, LogFormat::Text);
    assert_eq!(config.telemetry.log_level, "info");
    assert_eq!(config.schema_registry.url, None);
}

#[test]
fn default_toml_documents_every_key() {
    // Every `key = value` line must be preceded by a comment: default.toml is the docs.
    let mut previous = "";
    for line in DEFAULT_TOML.lines() {
        let line = line.trim();
        let is_key = !line.is_empty() && !line.starts_with('#') && !line.starts_with('[');
        assert!(
            !is_key || previous.starts_with('#'),
            "undocumented key in default.toml: {line}"
        );
        previous = line;
    }
}

#[test]
fn file_overrides_default_and_later_file_overrides_earlier() {
    jail(|jail| {
        jail.create_file(
            "a.toml",
            "[server]\nlisten = \"0.0.0.0:9000\"\n[log]\npartitions = 3\n",
        )?;
        jail.create_file("b.toml", "[log]\npartitions = 5\n")?;
        let files = [
            jail.directory().join("a.toml"),
            jail.directory().join("b.toml"),
        ];
        let config = load(&files, EnvVars::none()).map_err(|e| e.to_string())?;
        assert_eq!(config.server.listen.port(), 9000);
        assert_eq!(config.log.partitions, 5);
        // Untouched keys keep their defaults.
        assert_eq!(config.server.max_body_bytes, 4_194_304);
        Ok(())
    });
}

#[test]
fn env_overrides_file() {
    jail(|jail| {
        jail.create_file("a.toml", "[log]\nurl = \"memory://\"\npartitions = 3\n")?;
        jail.set_env("SWITCHYARD__LOG__URL", "kafka://k1:9092,k2:9093");
        jail.set_env("SWITCHYARD__SERVER__LISTEN", "0.0.0.0:8081");
        let files = [jail.directory().join("a.toml")];
        let config = load(&files, EnvVars::from_process()).map_err(|e| e.to_string())?;
        assert_eq!(
            config.log.backend,
            LogBackend::Kafka {
                brokers: vec!["k1:9092".into(), "k2:9093".into()]
            }
        );
        assert_eq!(config.log.partitions, 3);
        assert_eq!(config.server.listen.port(), 8081);
        Ok(())
    });
}

#[test]
fn env_reaches_top_level_and_nested_keys() {
    let env = EnvVars::from_vars([
        ("SWITCHYARD__DATA_DIR", "/srv/sy"),
        ("SWITCHYARD__STORE__URL", "scylla://scylla:9042/switchyard"),
        (
            "SWITCHYARD__SCHEMA_REGISTRY__URL",
            "http://schema-registry:8081/",
        ),
        ("SWITCHYARD__TELEMETRY__LOG_FORMAT", "json"),
        ("SWITCHYARD__LOG__FSYNC", "none"),
    ]);
    let config = load(&no_files(), env).unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/srv/sy"));
    assert_eq!(
        config.store.backend,
        StoreBackend::Scylla {
            nodes: vec!["scylla:9042".into()],
            keyspace: "switchyard".into()
        }
    );
    assert_eq!(
        config.schema_registry.url.as_deref(),
        Some("http://schema-registry:8081")
    );
    assert_eq!(config.telemetry.log_format, LogFormat::Json);
    assert_eq!(config.log.fsync, FsyncMode::None);
}

#[test]
fn unknown_key_in_a_file_names_key_file_and_known_keys() {
    jail(|jail| {
        jail.create_file("x.toml", "[server]\nlisen = \"0.0.0.0:1\"\n")?;
        let file = jail.directory().join("x.toml");
        let error = load(std::slice::from_ref(&file), EnvVars::none()).unwrap_err();
        assert_eq!(error.key(), Some("server.lisen"));
        assert_eq!(error.origin(), Some(&Origin::File(file.clone())));
        let message = error.to_string();
        assert_eq!(
            message,
            format!(
                "config error: unknown key `server.lisen` (in {}); known keys in [server]: \
                 listen, max_body_bytes, shutdown_grace_ms, request_timeout_ms, processor_threads, \
                 processor_linger_ms, processor_nice",
                file.display()
            )
        );
        Ok(())
    });
}

#[test]
fn unknown_top_level_section_in_a_file_is_rejected() {
    jail(|jail| {
        jail.create_file("x.toml", "[sever]\nlisten = \"0.0.0.0:1\"\n")?;
        let error = load(&[jail.directory().join("x.toml")], EnvVars::none()).unwrap_err();
        assert_eq!(error.key(), Some("sever"));
        let message = error.to_string();
        assert!(
            message.contains("known keys in the top level: data_dir, server, log"),
            "{message}"
        );
        Ok(())
    });
}

#[test]
fn unknown_key_in_env_names_the_variable() {
    let env = EnvVars::from_vars([("SWITCHYARD__LOG__PARTITINS", "3")]);
    let error = load(&no_files(), env).unwrap_err();
    assert_eq!(error.key(), Some("log.partitins"));
    assert_eq!(
        error.origin(),
        Some(&Origin::EnvVar("SWITCHYARD__LOG__PARTITINS".into()))
    );
    let message = error.to_string();
    assert!(
        message.starts_with(
            "config error: unknown key `log.partitins` (from SWITCHYARD__LOG__PARTITINS); known keys in [log]: url, partitions,"
        ),
        "{message}"
    );
}

#[test]
fn unknown_section_in_process_env_is_rejected() {
    jail(|jail| {
        jail.set_env("SWITCHYARD__SERVR__LISTEN", "0.0.0.0:1");
        let error = load(&no_files(), EnvVars::from_process()).unwrap_err();
        assert_eq!(error.key(), Some("servr"));
        assert_eq!(
            error.origin(),
            Some(&Origin::EnvVar("SWITCHYARD__SERVR__LISTEN".into()))
        );
        Ok(())
    });
}

#[test]
fn out_of_range_value_names_key_and_file() {
    jail(|jail| {
        jail.create_file("x.toml", "[log]\npartitions = 0\n")?;
        let file = jail.directory().join("x.toml");
        let error = load(std::slice::from_ref(&file), EnvVars::none()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "config error: `log.partitions` (in {}): must be between 1 and 1024, got 0",
                file.display()
            )
        );
        Ok(())
    });
}

#[test]
fn invalid_socket_address_from_env_names_the_variable() {
    let env = EnvVars::from_vars([("SWITCHYARD__SERVER__LISTEN", "abc")]);
    let error = load(&no_files(), env).unwrap_err();
    assert_eq!(
        error.to_string(),
        "config error: `server.listen` (from SWITCHYARD__SERVER__LISTEN): invalid socket address \"abc\" \
         (expected ip:port, e.g. \"127.0.0.1:8080\")"
    );
}

#[test]
fn wrong_type_names_key_and_source() {
    let env = EnvVars::from_vars([("SWITCHYARD__LOG__PARTITIONS", "many")]);
    let error = load(&no_files(), env).unwrap_err();
    assert_eq!(error.key(), Some("log.partitions"));
    let message = error.to_string();
    assert!(
        message.contains("(from SWITCHYARD__LOG__PARTITIONS)"),
        "{message}"
    );
    assert!(message.contains("found string \"many\""), "{message}");
}

#[test]
fn unknown_enum_value_lists_the_accepted_ones() {
    let env = EnvVars::from_vars([("SWITCHYARD__LOG__FSYNC", "always")]);
    let message = load(&no_files(), env).unwrap_err().to_string();
    assert_eq!(
        message,
        "config error: `log.fsync` (from SWITCHYARD__LOG__FSYNC): unknown value \"always\", expected one of: group, none"
    );
}

#[test]
fn unknown_url_scheme_names_key_and_accepted_schemes() {
    let env = EnvVars::from_vars([("SWITCHYARD__LOG__URL", "redis://x:1")]);
    let message = load(&no_files(), env).unwrap_err().to_string();
    assert!(
        message.starts_with("config error: `log.url` (from SWITCHYARD__LOG__URL): unsupported URL"),
        "{message}"
    );
    assert!(message.contains("kafka://host:port"), "{message}");

    let env = EnvVars::from_vars([("SWITCHYARD__STORE__URL", "postgres://x/y")]);
    let message = load(&no_files(), env).unwrap_err().to_string();
    assert!(
        message.contains("`store.url`") && message.contains("scylla://"),
        "{message}"
    );
}

#[test]
fn every_error_is_one_line() {
    jail(|jail| {
        jail.create_file("bad.toml", "[server\nlisten = \n")?;
        let cases = [
            load(&[jail.directory().join("bad.toml")], EnvVars::none()),
            load(&[jail.directory().join("missing.toml")], EnvVars::none()),
            load(
                &no_files(),
                EnvVars::from_vars([("SWITCHYARD__LOG__URL", "kafka://nohost")]),
            ),
        ];
        for case in cases {
            let message = case.unwrap_err().to_string();
            assert!(message.starts_with("config error: "), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
        Ok(())
    });
}

#[test]
fn missing_or_malformed_file_is_an_error_naming_it() {
    jail(|jail| {
        let missing = jail.directory().join("missing.toml");
        let error = load(std::slice::from_ref(&missing), EnvVars::none()).unwrap_err();
        assert!(
            matches!(&error, ConfigError::File { path, .. } if *path == missing),
            "{error}"
        );

        jail.create_file("bad.toml", "[server\n")?;
        let bad = jail.directory().join("bad.toml");
        let error = load(std::slice::from_ref(&bad), EnvVars::none()).unwrap_err();
        assert!(
            matches!(&error, ConfigError::File { path, .. } if *path == bad),
            "{error}"
        );
        Ok(())
    });
}

#[test]
fn backend_urls_resolve_by_scheme() {
    let load_log = |url: &str| {
        load(
            &no_files(),
            EnvVars::from_vars([("SWITCHYARD__LOG__URL", url)]),
        )
        .map(|c| c.log.backend)
    };
    assert_eq!(load_log("memory://").unwrap(), LogBackend::Memory);
    assert_eq!(
        load_log("file:///var/sy").unwrap(),
        LogBackend::Embedded("/var/sy".into())
    );
    assert!(load_log("file://relative/dir").is_err());
    assert!(load_log("kafka://").is_err());
    assert!(load_log("kafka://host:notaport").is_err());
    assert!(load_log("kafka://:9092").is_err());

    let load_store = |url: &str| {
        load(
            &no_files(),
            EnvVars::from_vars([("SWITCHYARD__STORE__URL", url)]),
        )
        .map(|c| c.store.backend)
    };
    assert_eq!(load_store("memory://").unwrap(), StoreBackend::Memory);
    assert!(load_store("scylla://s:9042").is_err());
    assert!(load_store("scylla://s:9042/bad-name").is_err());
    assert_eq!(
        load_store("scylla://a:9042,b:9042/ks").unwrap(),
        StoreBackend::Scylla {
            nodes: vec!["a:9042".into(), "b:9042".into()],
            keyspace: "ks".into()
        }
    );
}

#[test]
fn log_level_accepts_levels_and_directives_only() {
    let level = |value: &str| {
        load(
            &no_files(),
            EnvVars::from_vars([("SWITCHYARD__TELEMETRY__LOG_LEVEL", value)]),
        )
    };
    assert!(level("debug").is_ok());
    assert!(level("info,switchyard_log=trace").is_ok());
    assert_eq!(
        level("verbose").unwrap_err().key(),
        Some("telemetry.log_level")
    );
    assert!(level("").is_err());
}

#[test]
fn schema_registry_url_must_be_http() {
    let registry = |value: &str| {
        load(
            &no_files(),
            EnvVars::from_vars([("SWITCHYARD__SCHEMA_REGISTRY__URL", value)]),
        )
    };
    assert!(registry("https://registry.example:8081").is_ok());
    // An empty variable clears a URL set by a file.
    assert_eq!(registry("").unwrap().schema_registry.url, None);
    assert_eq!(
        registry("registry:8081").unwrap_err().key(),
        Some("schema_registry.url")
    );
}

#[test]
fn data_dir_resolution() {
    let platform = PlatformDirs {
        data_dir: Some("/home/u/.local/share".into()),
        home_dir: Some("/home/u".into()),
    };
    assert_eq!(
        resolve_data_dir(None, &platform).unwrap(),
        PathBuf::from("/home/u/.local/share/switchyard")
    );
    assert_eq!(
        resolve_data_dir(Some("".as_ref()), &platform).unwrap(),
        PathBuf::from("/home/u/.local/share/switchyard")
    );
    assert_eq!(
        resolve_data_dir(Some("/srv/sy".as_ref()), &platform).unwrap(),
        PathBuf::from("/srv/sy")
    );

    let home_only = PlatformDirs {
        data_dir: None,
        home_dir: Some("/home/u".into()),
    };
    assert_eq!(
        resolve_data_dir(None, &home_only).unwrap(),
        PathBuf::from("/home/u/.local/share/switchyard")
    );
    let error = resolve_data_dir(None, &PlatformDirs::default()).unwrap_err();
    assert_eq!(error.key(), Some("data_dir"));
}

#[test]
fn data_dir_flag_overrides_file_and_env_and_moves_embedded_backends() {
    jail(|jail| {
        jail.create_file("a.toml", "data_dir = \"/from/file\"\n")?;
        jail.set_env("SWITCHYARD__DATA_DIR", "/from/env");
        let files = [jail.directory().join("a.toml")];

        let config = load(&files, EnvVars::from_process()).map_err(|e| e.to_string())?;
        assert_eq!(config.data_dir, PathBuf::from("/from/env"));

        let overrides = Overrides::default().with_data_dir("/from/flag");
        let config =
            load_with(&files, EnvVars::from_process(), &overrides).map_err(|e| e.to_string())?;
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(
            config.log.backend,
            LogBackend::Embedded("/from/flag/log".into())
        );
        assert_eq!(
            config.store.backend,
            StoreBackend::Embedded("/from/flag/store".into())
        );
        Ok(())
    });
}

#[test]
fn empty_data_dir_uses_the_platform_directory() {
    jail(|jail| {
        jail.set_env("XDG_DATA_HOME", "/xdg/data");
        let config = load(&no_files(), EnvVars::none()).map_err(|e| e.to_string())?;
        if cfg!(target_os = "linux") {
            assert_eq!(config.data_dir, PathBuf::from("/xdg/data/switchyard"));
        }
        Ok(())
    });
}

#[test]
fn validate_is_usable_on_a_raw_config() {
    let raw = load_raw(
        &no_files(),
        EnvVars::from_vars([("SWITCHYARD__LOG__PARTITIONS", "2000")]),
    )
    .unwrap();
    let platform = PlatformDirs {
        data_dir: Some("/data".into()),
        home_dir: None,
    };
    let error = raw.validate_with(&platform).unwrap_err();
    // Without the loader there is no layer information, but the key is named.
    assert_eq!(
        error.to_string(),
        "config error: `log.partitions`: must be between 1 and 1024, got 2000"
    );
}

#[test]
fn defaults_in_roots_the_embedded_backends_in_the_given_directory() {
    let config = Config::defaults_in("/tmp/sy-test").unwrap();
    assert_eq!(config.data_dir, PathBuf::from("/tmp/sy-test"));
    assert_eq!(
        config.log.backend,
        LogBackend::Embedded("/tmp/sy-test/log".into())
    );
}

#[test]
fn routing_defaults_are_the_published_ones() {
    let config = Config::defaults_in("/tmp/sy-test").unwrap();
    let routing = &config.routing;
    assert_eq!(
        routing.score_weights,
        ScoreWeightsConfig {
            success: 0.4,
            feedback: 0.4,
            cost: 0.2
        }
    );
    assert_eq!(
        routing.default_constraints,
        ConstraintsConfig {
            max_regression: Some(0.05),
            min_confidence: Some(0.8),
            rollback_threshold: Some(3),
            ..ConstraintsConfig::default()
        }
    );
    assert_eq!(
        routing.learning,
        LearningConfig {
            phase1_min_samples: 20,
            phase2_min_samples: 10,
            half_weight_samples: 10.0,
            prior_sd: 0.04,
            calibrate_judge: true,
        }
    );
    assert_eq!(
        routing.signing_key,
        SigningKeyFile::Generated("/tmp/sy-test/keys/decision-signing.pk8".into())
    );
    assert_eq!(routing.default_language, "en");
    assert_eq!(routing.priors_file, None);

    let default = &config.routes[0];
    assert_eq!(default.name, "default");
    assert_eq!(default.baseline, "demo/large");
    assert_eq!(default.candidates, ["demo/small", "demo/medium"]);
    assert_eq!(default.canary_percent, 0);
    assert_eq!(default.mirror_fraction, 0.0);
    assert_eq!(default.mirror_daily_cap_usd, None);
    assert_eq!(default.category, "general");
    assert!(!default.own_constraints);
    assert_eq!(default.constraints, routing.default_constraints);
}

#[test]
fn a_route_with_its_own_constraints_uses_exactly_them() {
    jail(|jail| {
        jail.create_file(
            "routes.toml",
            r#"
[routes.support]
baseline = "demo/large"
candidates = ["demo/small"]
mode = "canary"
canary_percent = 10
mirror_fraction = 0.25
mirror_daily_cap_usd = 5
category = "code"
[routes.support.constraints]
max_cost_increase = -0.5
max_p95_latency_ms = 2000

[routes.bare]
baseline = "demo/large"
candidates = []
mode = "off"
constraints = {}
"#,
        )?;
        let config = load(&[jail.directory().join("routes.toml")], EnvVars::none())
            .map_err(|e| e.to_string())?;
        let route = |name: &str| config.routes.iter().find(|r| r.name == name).cloned();
        let support = route("support").ok_or("no support route")?;
        assert_eq!(support.mode, RouteMode::Canary);
        assert_eq!(support.canary_percent, 10);
        assert_eq!(support.mirror_fraction, 0.25);
        assert_eq!(support.mirror_daily_cap_usd, Some(5.0));
        assert_eq!(support.category, "code");
        assert!(support.own_constraints);
        assert_eq!(
            support.constraints,
            ConstraintsConfig {
                max_cost_increase: Some(-0.5),
                max_p95_latency_ms: Some(2000),
                ..ConstraintsConfig::default()
            }
        );
        let bare = route("bare").ok_or("no bare route")?;
        assert!(bare.own_constraints);
        assert_eq!(bare.constraints, ConstraintsConfig::default());
        // `default` sets none of its own: the defaults apply.
        let default = route("default").ok_or("no default route")?;
        assert_eq!(default.constraints, config.routing.default_constraints);
        Ok(())
    });
}

#[test]
fn constraint_out_of_range_names_the_key_and_the_file() {
    jail(|jail| {
        jail.create_file(
            "x.toml",
            "[routes.default.constraints]\nrollback_threshold = 0\n",
        )?;
        let file = jail.directory().join("x.toml");
        let error = load(std::slice::from_ref(&file), EnvVars::none()).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "config error: `routes.default.constraints.rollback_threshold` (in {}): must be at least 1, got 0",
                file.display()
            )
        );
        jail.create_file(
            "y.toml",
            "[routes.default.constraints]\nmax_cost_increase = -1.5\n",
        )?;
        let error = load(&[jail.directory().join("y.toml")], EnvVars::none()).unwrap_err();
        assert_eq!(
            error.key(),
            Some("routes.default.constraints.max_cost_increase")
        );
        jail.create_file(
            "z.toml",
            "[routes.default.constraints]\nmax_regresion = 0.1\n",
        )?;
        let error = load(&[jail.directory().join("z.toml")], EnvVars::none()).unwrap_err();
        assert_eq!(
            error.key(),
            Some("routes.default.constraints.max_regresion")
        );
        Ok(())
    });
}

#[test]
fn routing_values_from_env_name_the_variable() {
    let cases = [
        (
            "SWITCHYARD__ROUTES__DEFAULT__CANARY_PERCENT",
            "101",
            "routes.default.canary_percent",
        ),
        (
            "SWITCHYARD__ROUTES__DEFAULT__MIRROR_FRACTION",
            "1.5",
            "routes.default.mirror_fraction",
        ),
        (
            "SWITCHYARD__ROUTES__DEFAULT__CATEGORY",
            "Has Spaces",
            "routes.default.category",
        ),
        (
            "SWITCHYARD__ROUTING__DEFAULT_CONSTRAINTS__MIN_CONFIDENCE",
            "2",
            "routing.default_constraints.min_confidence",
        ),
        (
            "SWITCHYARD__ROUTING__SCORE_WEIGHTS__COST",
            "-0.2",
            "routing.score_weights.cost",
        ),
        (
            "SWITCHYARD__ROUTING__LEARNING__PRIOR_SD",
            "0",
            "routing.learning.prior_sd",
        ),
        (
            "SWITCHYARD__ROUTING__DEFAULT_LANGUAGE",
            "klingon",
            "routing.default_language",
        ),
    ];
    for (var, value, key) in cases {
        let error = load(&no_files(), EnvVars::from_vars([(var, value)])).unwrap_err();
        assert_eq!(error.key(), Some(key), "{var}={value}: {error}");
        assert_eq!(
            error.origin(),
            Some(&Origin::EnvVar(var.into())),
            "{var}={value}: {error}"
        );
        assert!(!error.to_string().contains('\n'));
    }
    let config = load(
        &no_files(),
        EnvVars::from_vars([
            ("SWITCHYARD__ROUTES__DEFAULT__MODE", "shadow"),
            ("SWITCHYARD__ROUTES__DEFAULT__MIRROR_FRACTION", "0.1"),
            ("SWITCHYARD__ROUTING__SIGNING_KEY_FILE", "/etc/sy/key.pk8"),
            ("SWITCHYARD__ROUTING__PRIORS_FILE", "/etc/sy/priors.toml"),
            ("SWITCHYARD__ROUTING__DEFAULT_LANGUAGE", "PT"),
        ]),
    )
    .unwrap();
    assert_eq!(config.routes[0].mode, RouteMode::Shadow);
    assert_eq!(config.routes[0].mirror_fraction, 0.1);
    assert_eq!(
        config.routing.signing_key,
        SigningKeyFile::Configured("/etc/sy/key.pk8".into())
    );
    assert_eq!(
        config.routing.priors_file,
        Some(PathBuf::from("/etc/sy/priors.toml"))
    );
    assert_eq!(config.routing.default_language, "pt");
}

#[test]
fn the_baseline_is_not_a_candidate_and_candidates_are_unique() {
    let error = load(
        &no_files(),
        EnvVars::from_vars([(
            "SWITCHYARD__ROUTES__DEFAULT__CANDIDATES",
            "[\"demo/small\", \"demo/large\"]",
        )]),
    )
    .unwrap_err();
    assert_eq!(error.key(), Some("routes.default.candidates"));
    assert!(error.to_string().contains("lists the baseline"), "{error}");
    let error = load(
        &no_files(),
        EnvVars::from_vars([(
            "SWITCHYARD__ROUTES__DEFAULT__CANDIDATES",
            "[\"demo/small\", \"demo/small\"]",
        )]),
    )
    .unwrap_err();
    assert!(error.to_string().contains("twice"), "{error}");
}

#[test]
fn sink_writes_under_the_data_dir_by_default_and_to_s3_when_configured() {
    let config = load(&no_files(), EnvVars::none()).unwrap();
    assert_eq!(
        config.sink.target,
        SinkTarget::Local(config.data_dir.join("exports"))
    );
    let config = load(
        &no_files(),
        EnvVars::from_vars([
            ("SWITCHYARD__SINK__URL", "s3://bucket/some/prefix/"),
            ("SWITCHYARD__SINK__S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("SWITCHYARD__SINK__S3_SECRET_ACCESS_KEY", "hush"),
        ]),
    )
    .unwrap();
    let SinkTarget::S3 {
        bucket,
        prefix,
        endpoint,
        secret_access_key,
        ..
    } = &config.sink.target
    else {
        panic!("not S3: {:?}", config.sink.target);
    };
    assert_eq!(
        (bucket.as_str(), prefix.as_str()),
        ("bucket", "some/prefix")
    );
    assert_eq!(endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert_eq!(secret_access_key.as_deref(), Some("hush"));
    assert!(!format!("{:?}", config.sink).contains("hush"));
    let error = load(
        &no_files(),
        EnvVars::from_vars([("SWITCHYARD__SINK__URL", "ftp://somewhere")]),
    )
    .unwrap_err();
    assert_eq!(error.key(), Some("sink.url"));
}

#[test]
fn the_session_nps_window_is_configurable_in_hours() {
    let config = load(&no_files(), EnvVars::none()).unwrap();
    assert_eq!(config.feedback.nps_window, Duration::from_secs(24 * 3600));
    assert_eq!(
        config.feedback.session_retention,
        Duration::from_secs(7 * 24 * 3600)
    );
    let config = load(
        &no_files(),
        EnvVars::from_vars([("SWITCHYARD__FEEDBACK__NPS_WINDOW_HOURS", "2")]),
    )
    .unwrap();
    assert_eq!(config.feedback.nps_window, Duration::from_secs(2 * 3600));
    let error = load(
        &no_files(),
        EnvVars::from_vars([("SWITCHYARD__FEEDBACK__NPS_WINDOW_HOURS", "100000")]),
    )
    .unwrap_err();
    let error = error.to_string();
    assert!(
        error.contains("`feedback.nps_window_hours`")
            && error.contains("must be between 0 and 8760, got 100000"),
        "{error}"
    );
}
