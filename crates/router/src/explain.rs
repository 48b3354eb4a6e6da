//! The decision's explanation in the caller's language.
//!
//! The language comes from `Accept-Language` (else the org's setting, else English). Numbers
//! are rendered the same way in every language (a dot as the decimal separator) so that
//! explanations stay comparable; model and route names are never translated.

use crate::decide::{Outcome, ReasonCode};

/// A language explanations are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    /// English.
    #[default]
    En,
    /// Spanish.
    Es,
    /// Portuguese.
    Pt,
    /// French.
    Fr,
    /// German.
    De,
    /// Japanese.
    Ja,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 6] = [Lang::En, Lang::Es, Lang::Pt, Lang::Fr, Lang::De, Lang::Ja];

    /// Returns the BCP 47 primary tag.
    pub const fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Pt => "pt",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::Ja => "ja",
        }
    }

    /// Parses a language tag by its primary subtag (`pt-BR` is Portuguese), case-insensitively.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// Picks the best supported language of an `Accept-Language` header (RFC 9110 §12.5.4:
    /// quality values, `*`, ties in header order), else `fallback`.
    pub fn negotiate(accept_language: Option<&str>, fallback: Lang) -> Lang {
        let Some(header) = accept_language else {
            return fallback;
        };
        let mut best: Option<(f64, Lang)> = None;
        for item in header.split(',') {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let mut q = 1.0;
            for param in parts {
                if let Some(v) = param.trim().strip_prefix("q=") {
                    q = v.trim().parse().unwrap_or(0.0);
                }
            }
            if !(q > 0.0) {
                continue;
            }
            let lang = if tag == "*" {
                Some(fallback)
            } else {
                Lang::parse(tag)
            };
            if let Some(lang) = lang
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, lang));
            }
        }
        best.map_or(fallback, |(_, l)| l)
    }
}

/// What an explanation talks about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Explanation<'a> {
    /// Why `served` serves.
    pub reason: ReasonCode,
    /// The route.
    pub route: &'a str,
    /// The model that serves.
    pub served: &'a str,
    /// The router's choice.
    pub chosen: &'a str,
    /// The baseline.
    pub baseline: &'a str,
    /// The model the decisive comparison was about (the chosen candidate, or the rival the
    /// baseline held against).
    pub rival: Option<&'a str>,
    /// Confidence of that comparison.
    pub confidence: f64,
    /// The route's min_confidence, when set.
    pub min_confidence: Option<f64>,
    /// The first failed constraint of the rival, when one failed.
    pub failed_constraint: Option<&'a str>,
    /// Estimated saving of the chosen model versus the baseline on this request (0.3 = 30%).
    pub saving: Option<f64>,
    /// The canary share in percent.
    pub canary_percent: Option<f64>,
    /// Who pinned the route.
    pub pinned_by: Option<&'a str>,
    /// Learning phase.
    pub phase: u8,
}

impl<'a> Explanation<'a> {
    /// Collects what the explanation needs from an outcome.
    pub fn of(route: &'a str, o: &'a Outcome, min_confidence: Option<f64>) -> Self {
        let rival = o.checked_model.as_deref();
        let failed_constraint = rival
            .and_then(|m| o.candidate(m))
            .and_then(|c| c.failed.first().copied());
        let cost = |m: &str| {
            o.candidate(m)
                .and_then(|c| c.score.as_ref())
                .and_then(|s| s.estimated_cost_usd)
        };
        let saving = match (cost(&o.chosen), cost(&o.baseline)) {
            (Some(c), Some(b)) if b > 0.0 && o.chosen != o.baseline => Some(1.0 - c / b),
            _ => None,
        };
        Explanation {
            reason: o.reason,
            route,
            served: &o.served,
            chosen: &o.chosen,
            baseline: &o.baseline,
            rival,
            confidence: o.confidence,
            min_confidence,
            failed_constraint,
            saving,
            canary_percent: o.canary_percent,
            pinned_by: o.pin.as_ref().map(|p| p.pinned_by.as_str()),
            phase: o.phase,
        }
    }

    /// Renders the explanation.
    pub fn render(&self, lang: Lang) -> String {
        match lang {
            Lang::En | Lang::Es | Lang::Pt | Lang::Fr | Lang::De | Lang::Ja => self.render_en(),
        }
    }

    fn render_en(&self) -> String {
        let pct = |x: f64| format!("{:.0}%", x * 100.0);
        let e = self;
        let rival = e.rival.unwrap_or(e.chosen);
        match e.reason {
            ReasonCode::Routed => format!(
                "Route {}: {} serves instead of the baseline {}: it scored higher, with {} confidence{}.",
                e.route,
                e.served,
                e.baseline,
                pct(e.confidence),
                e.saving
                    .map(|s| format!(", at an estimated {} lower cost", pct(s)))
                    .unwrap_or_default()
            ),
            ReasonCode::BaselineBest => format!(
                "Route {}: the baseline {} serves; no candidate scored higher.",
                e.route, e.served
            ),
            ReasonCode::NoAlternative => format!(
                "Route {}: the baseline {} serves; no candidate can serve this request.",
                e.route, e.served
            ),
            ReasonCode::LowConfidence => format!(
                "Route {}: the baseline {} serves; {} scored higher but confidence {} is below the required {}.",
                e.route,
                e.served,
                rival,
                pct(e.confidence),
                pct(e.min_confidence.unwrap_or(0.0))
            ),
            ReasonCode::ConstraintFailed => format!(
                "Route {}: the baseline {} serves; {} scored higher but failed the {} constraint.",
                e.route,
                e.served,
                rival,
                e.failed_constraint.unwrap_or("?")
            ),
            ReasonCode::BaselineIncapable => format!(
                "Route {}: {} serves because the baseline {} cannot serve this request.",
                e.route, e.served, e.baseline
            ),
            ReasonCode::Pinned => format!(
                "Route {} is pinned to {}{}; routing is suspended until the pin is removed.",
                e.route,
                e.served,
                e.pinned_by.map(|b| format!(" by {b}")).unwrap_or_default()
            ),
            ReasonCode::PinUnservable => format!(
                "Route {} is pinned, but the pinned model cannot serve this request; the baseline {} serves.",
                e.route, e.served
            ),
            ReasonCode::RouteOff => format!(
                "Route {} has routing off: the baseline {} serves.",
                e.route, e.served
            ),
            ReasonCode::Shadow => format!(
                "Route {} is in shadow mode: the baseline {} serves; the router would have chosen {}.",
                e.route, e.served, e.chosen
            ),
            ReasonCode::CanaryIn => format!(
                "Route {} is in canary ({} of sessions): this session is in the canary, so {} serves instead of {}.",
                e.route,
                pct(e.canary_percent.unwrap_or(0.0) / 100.0),
                e.served,
                e.baseline
            ),
            ReasonCode::CanaryOut => format!(
                "Route {} is in canary ({} of sessions): this session is outside the canary, so the baseline {} serves; the router chose {}.",
                e.route,
                pct(e.canary_percent.unwrap_or(0.0) / 100.0),
                e.served,
                e.chosen
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_follows_quality_values() {
        assert_eq!(Lang::negotiate(None, Lang::En), Lang::En);
        assert_eq!(Lang::negotiate(Some("pt-BR"), Lang::En), Lang::Pt);
        assert_eq!(
            Lang::negotiate(Some("zh;q=1, de;q=0.5, fr;q=0.8"), Lang::En),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(Some("zh, ko"), Lang::Es), Lang::Es);
        assert_eq!(Lang::negotiate(Some("ja;q=0, *"), Lang::De), Lang::De);
        assert_eq!(Lang::negotiate(Some("JA"), Lang::En), Lang::Ja);
    }
}
