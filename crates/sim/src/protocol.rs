//! The routing simulator's wire protocol v1 (`python3 ../shared/sim/routing_sim.py protocol`):
//! one JSON object per line in, exactly one JSON line back per message.

use serde::Deserialize;

/// A route of the simulated world.
#[derive(Debug, Clone, Deserialize)]
pub struct SimRoute {
    /// The route's name.
    pub name: String,
    /// Its default model: the baseline.
    pub default: String,
    /// The task categories its traffic draws from.
    #[serde(default)]
    pub categories: Vec<String>,
}

/// A model of the simulated catalog.
#[derive(Debug, Clone, Deserialize)]
pub struct SimModel {
    /// The model's name (what replies name).
    pub name: String,
    /// Its provider.
    #[serde(default)]
    pub provider: String,
    /// USD per 1M input tokens.
    pub price_in_per_mtok: f64,
    /// USD per 1M output tokens.
    pub price_out_per_mtok: f64,
}

/// The world's constraints.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SimConstraints {
    /// Largest allowed quality drop versus the default model.
    pub max_regression: Option<f64>,
}

/// One message from the simulator.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// The run starts.
    Hello {
        /// Routes.
        #[serde(default)]
        routes: Vec<SimRoute>,
        /// The catalog.
        #[serde(default)]
        models: Vec<SimModel>,
        /// Constraints.
        #[serde(default)]
        constraints: SimConstraints,
    },
    /// A benchmark prior.
    Prior {
        /// Virtual seconds.
        t: f64,
        /// The model.
        model: String,
        /// The category.
        category: String,
        /// The score, 0..=1.
        score: f64,
    },
    /// A request to route.
    Request {
        /// Virtual seconds.
        t: f64,
        /// The request id.
        request_id: String,
        /// The session.
        session_id: String,
        /// The route.
        route: String,
        /// The category (null when hidden).
        category: Option<String>,
        /// Input tokens.
        #[serde(default)]
        prompt_tokens: u64,
        /// Expected output tokens.
        #[serde(default)]
        expected_output_tokens: u64,
        /// The prompt text (routellm world).
        #[serde(default)]
        prompt: Option<String>,
    },
    /// What a request cost.
    Usage {
        /// Virtual seconds.
        t: f64,
        /// The request.
        request_id: String,
        /// The served model.
        model: String,
        /// Its cost.
        #[serde(default)]
        cost_usd: f64,
        /// Cost of the shadow calls.
        #[serde(default)]
        shadow_cost_usd: f64,
    },
    /// A judge score.
    Judge {
        /// Virtual seconds.
        t: f64,
        /// The request.
        request_id: String,
        /// The judged model.
        model: String,
        /// Whether the judged answer was a shadow call.
        #[serde(default)]
        shadow: bool,
        /// The score, 0..=1.
        score: f64,
    },
    /// A session NPS rating.
    Nps {
        /// Virtual seconds.
        t: f64,
        /// The session.
        session_id: String,
        /// 0..=10.
        score: f64,
    },
    /// An admin rating.
    Admin {
        /// Virtual seconds.
        t: f64,
        /// The request.
        request_id: String,
        /// The rated model.
        model: String,
        /// 1..=5.
        score: f64,
    },
    /// The catalog changed.
    Catalog {
        /// Virtual seconds.
        t: f64,
        /// The full current catalog.
        models: Vec<SimModel>,
    },
    /// The run ends.
    End,
}
