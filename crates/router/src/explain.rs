//! The decision's explanation in the caller's language.
//!
//! The language comes from `Accept-Language` (else the org's setting, else English). Numbers
//! are rendered the same way in every language (a dot as the decimal separator, `{:.0}%`) so
//! that explanations stay comparable; model, route and constraint names are never translated.
//!
//! Each language is one writer function with an exhaustive `match` over [`ReasonCode`] (no `_`
//! arm), so a new reason does not compile until every language has its sentence. Adding a
//! language is a [`Lang`] variant (in [`Lang::ALL`], with its [`Lang::code`]) and one writer
//! function, wired in `Lang::writer`. Rendering writes straight into one pre-sized `String`.

use std::fmt::{self, Write as _};

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

/// The highest quality value, in thousandths.
const Q_MAX: u16 = 1000;

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

    /// Returns the sentences of this language.
    const fn writer(self) -> Writer {
        match self {
            Lang::En => en,
            Lang::Es => es,
            Lang::Pt => pt,
            Lang::Fr => fr,
            Lang::De => de,
            Lang::Ja => ja,
        }
    }

    /// Returns this language's bit in a set of languages.
    const fn bit(self) -> u32 {
        1 << self as u32
    }

    /// Parses a language tag by its primary subtag (`pt-BR` is Portuguese), case-insensitively.
    pub fn parse(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Lang::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// Picks the best supported language of an `Accept-Language` header (RFC 9110 §12.5.4),
    /// else `fallback`.
    ///
    /// The highest quality value wins, ties go to the range listed first, and `q=0` refuses a
    /// language. `*` stands for any language the header does not name: `fallback` if it is not
    /// named, else the first such language of [`Lang::ALL`]. A range whose quality value is
    /// malformed (not `0`..`1` with at most three decimals) is ignored. When nothing in the
    /// header is acceptable the answer is still `fallback`: an explanation in some language
    /// beats none.
    pub fn negotiate(accept_language: Option<&str>, fallback: Lang) -> Lang {
        let Some(header) = accept_language else {
            return fallback;
        };
        // (quality, position, language) of the best named range and of the best wildcard.
        let mut best: Option<(u16, usize, Lang)> = None;
        let mut star: Option<(u16, usize)> = None;
        let mut named = 0u32;
        for (at, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or_default().trim();
            let mut q = Some(Q_MAX);
            for param in parts {
                let (name, value) = param.split_once('=').unwrap_or((param, ""));
                if name.trim().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(value.trim());
                }
            }
            let Some(q) = q else {
                continue;
            };
            if range == "*" {
                if q > 0 && star.is_none_or(|(sq, _)| q > sq) {
                    star = Some((q, at));
                }
                continue;
            }
            let Some(lang) = Lang::parse(range) else {
                continue;
            };
            named |= lang.bit();
            if q > 0 && best.is_none_or(|(bq, _, _)| q > bq) {
                best = Some((q, at, lang));
            }
        }
        let wildcard = star.and_then(|(q, at)| {
            let unnamed = |l: Lang| named & l.bit() == 0;
            let lang = if unnamed(fallback) {
                Some(fallback)
            } else {
                Lang::ALL.into_iter().find(|&l| unnamed(l))
            };
            lang.map(|l| (q, at, l))
        });
        match (best, wildcard) {
            (Some((bq, bat, bl)), Some((sq, sat, sl))) => {
                if sq > bq || (sq == bq && sat < bat) {
                    sl
                } else {
                    bl
                }
            }
            (Some((_, _, l)), None) | (None, Some((_, _, l))) => l,
            (None, None) => fallback,
        }
    }
}

/// Parses an RFC 9110 qvalue (`0`, `0.5`, `0.123`, `1`, `1.000`) into thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (&first, rest) = text.as_bytes().split_first()?;
    let decimals: &[u8] = match rest {
        [] => &[],
        [b'.', decimals @ ..] if decimals.len() <= 3 => decimals,
        _ => return None,
    };
    let mut thousandths = 0u16;
    let mut unit = 100u16;
    for &d in decimals {
        if !d.is_ascii_digit() {
            return None;
        }
        thousandths += u16::from(d - b'0') * unit;
        unit /= 10;
    }
    match first {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(Q_MAX),
        _ => None,
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

/// Room for the fixed text of the longest sentence in any language, in bytes (Japanese is
/// three bytes a character); the names in it are added on top. A test holds every sentence to it.
const TEXT_CAPACITY: usize = 320;

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

    /// Renders the explanation in `lang`, in one allocation.
    pub fn render(&self, lang: Lang) -> String {
        let mut out = String::with_capacity(self.capacity_hint());
        // Writing into a `String` cannot fail, and the writers only forward its result.
        let _ = write!(out, "{}", Localized { e: self, lang });
        out
    }

    /// The bytes a rendering needs at most, short of extreme numbers.
    fn capacity_hint(&self) -> usize {
        let opt = |s: Option<&str>| s.map_or(0, str::len);
        TEXT_CAPACITY
            + self.route.len()
            + self.served.len()
            + self.chosen.len()
            + self.baseline.len()
            + opt(self.rival)
            + opt(self.failed_constraint)
            + opt(self.pinned_by)
    }

    /// The model the decisive comparison was about.
    fn rival_or_chosen(&self) -> &'a str {
        self.rival.unwrap_or(self.chosen)
    }

    /// The failed constraint's name.
    fn constraint(&self) -> &'a str {
        self.failed_constraint.unwrap_or("?")
    }

    fn confidence_pct(&self) -> Pct {
        Pct(self.confidence)
    }

    fn min_confidence_pct(&self) -> Pct {
        Pct(self.min_confidence.unwrap_or(0.0))
    }

    fn canary_pct(&self) -> Pct {
        Pct(self.canary_percent.unwrap_or(0.0) / 100.0)
    }
}

/// A share (0.3) rendered as a whole percentage (`30%`), the same in every language.
#[derive(Debug, Clone, Copy)]
struct Pct(f64);

impl fmt::Display for Pct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.0}%", self.0 * 100.0)
    }
}

/// An explanation in a language, written on demand.
struct Localized<'e, 'a> {
    e: &'e Explanation<'a>,
    lang: Lang,
}

impl fmt::Display for Localized<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.lang.writer())(self.e, f)
    }
}

/// Writes one language's sentence for an explanation.
type Writer = fn(&Explanation<'_>, &mut fmt::Formatter<'_>) -> fmt::Result;

fn en(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "Route {r}: {served} serves instead of the baseline {baseline}: it scored higher, with {} confidence",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, ", at an estimated {} lower cost", Pct(s))?;
            }
            f.write_str(".")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "Route {r}: the baseline {served} serves; no candidate scored higher."
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "Route {r}: the baseline {served} serves; no candidate can serve this request."
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "Route {r}: the baseline {served} serves; {} scored higher but confidence {} is below the required {}.",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "Route {r}: the baseline {served} serves; {} scored higher but failed the {} constraint.",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "Route {r}: {served} serves because the baseline {baseline} cannot serve this request."
        ),
        ReasonCode::Pinned => {
            write!(f, "Route {r} is pinned to {served}")?;
            if let Some(by) = e.pinned_by {
                write!(f, " by {by}")?;
            }
            f.write_str("; routing is suspended until the pin is removed.")
        }
        ReasonCode::PinUnservable => write!(
            f,
            "Route {r} is pinned, but the pinned model cannot serve this request; the baseline {served} serves."
        ),
        ReasonCode::RouteOff => write!(
            f,
            "Route {r} has routing off: the baseline {served} serves."
        ),
        ReasonCode::Shadow => write!(
            f,
            "Route {r} is in shadow mode: the baseline {served} serves; the router would have chosen {chosen}."
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "Route {r} is in canary ({} of sessions): this session is in the canary, so {served} serves instead of {baseline}.",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "Route {r} is in canary ({} of sessions): this session is outside the canary, so the baseline {served} serves; the router chose {chosen}.",
            e.canary_pct()
        ),
    }
}

fn es(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "Ruta {r}: {served} responde en lugar del modelo de referencia {baseline}: obtuvo una puntuación más alta, con una confianza del {}",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, " y un costo estimado un {} menor", Pct(s))?;
            }
            f.write_str(".")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "Ruta {r}: responde el modelo de referencia {served}; ningún candidato obtuvo una puntuación más alta."
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "Ruta {r}: responde el modelo de referencia {served}; ningún candidato puede atender esta solicitud."
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "Ruta {r}: responde el modelo de referencia {served}; {} obtuvo una puntuación más alta, pero su confianza del {} no alcanza el mínimo requerido del {}.",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "Ruta {r}: responde el modelo de referencia {served}; {} obtuvo una puntuación más alta, pero no cumplió la restricción {}.",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "Ruta {r}: {served} responde porque el modelo de referencia {baseline} no puede atender esta solicitud."
        ),
        ReasonCode::Pinned => {
            write!(f, "La ruta {r} está fijada a {served}")?;
            if let Some(by) = e.pinned_by {
                write!(f, " por {by}")?;
            }
            f.write_str("; el enrutamiento queda suspendido hasta que se retire la fijación.")
        }
        ReasonCode::PinUnservable => write!(
            f,
            "La ruta {r} está fijada, pero el modelo fijado no puede atender esta solicitud; responde el modelo de referencia {served}."
        ),
        ReasonCode::RouteOff => write!(
            f,
            "La ruta {r} tiene el enrutamiento desactivado: responde el modelo de referencia {served}."
        ),
        ReasonCode::Shadow => write!(
            f,
            "La ruta {r} está en modo sombra: responde el modelo de referencia {served}; el enrutador habría elegido {chosen}."
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "La ruta {r} está en despliegue canario ({} de las sesiones): esta sesión forma parte del canario, por lo que {served} responde en lugar de {baseline}.",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "La ruta {r} está en despliegue canario ({} de las sesiones): esta sesión queda fuera del canario, por lo que responde el modelo de referencia {served}; el enrutador eligió {chosen}.",
            e.canary_pct()
        ),
    }
}

fn pt(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "Rota {r}: {served} responde no lugar do modelo de referência {baseline}: obteve pontuação maior, com {} de confiança",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, " e custo estimado {} menor", Pct(s))?;
            }
            f.write_str(".")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "Rota {r}: o modelo de referência {served} responde; nenhum candidato obteve pontuação maior."
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "Rota {r}: o modelo de referência {served} responde; nenhum candidato pode atender a esta solicitação."
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "Rota {r}: o modelo de referência {served} responde; {} obteve pontuação maior, mas a confiança de {} está abaixo do mínimo exigido de {}.",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "Rota {r}: o modelo de referência {served} responde; {} obteve pontuação maior, mas não atendeu à restrição {}.",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "Rota {r}: {served} responde porque o modelo de referência {baseline} não pode atender a esta solicitação."
        ),
        ReasonCode::Pinned => {
            write!(f, "A rota {r} está fixada em {served}")?;
            if let Some(by) = e.pinned_by {
                write!(f, " por {by}")?;
            }
            f.write_str("; o roteamento fica suspenso até que a fixação seja removida.")
        }
        ReasonCode::PinUnservable => write!(
            f,
            "A rota {r} está fixada, mas o modelo fixado não pode atender a esta solicitação; o modelo de referência {served} responde."
        ),
        ReasonCode::RouteOff => write!(
            f,
            "A rota {r} está com o roteamento desativado: o modelo de referência {served} responde."
        ),
        ReasonCode::Shadow => write!(
            f,
            "A rota {r} está em modo sombra: o modelo de referência {served} responde; o roteador teria escolhido {chosen}."
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "A rota {r} está em implantação canário ({} das sessões): esta sessão está no canário, por isso {served} responde no lugar de {baseline}.",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "A rota {r} está em implantação canário ({} das sessões): esta sessão está fora do canário, por isso o modelo de referência {served} responde; o roteador escolheu {chosen}.",
            e.canary_pct()
        ),
    }
}

/// French sets a no-break space (U+00A0) before `:` and `;`.
fn fr(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "Route {r}\u{a0}: {served} répond à la place du modèle de référence {baseline}\u{a0}: il a obtenu un meilleur score, avec une confiance de {}",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, ", pour un coût estimé inférieur de {}", Pct(s))?;
            }
            f.write_str(".")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "Route {r}\u{a0}: le modèle de référence {served} répond\u{a0}; aucun candidat n’a obtenu un meilleur score."
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "Route {r}\u{a0}: le modèle de référence {served} répond\u{a0}; aucun candidat ne peut traiter cette requête."
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "Route {r}\u{a0}: le modèle de référence {served} répond\u{a0}; {} a obtenu un meilleur score, mais sa confiance de {} est inférieure au seuil requis de {}.",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "Route {r}\u{a0}: le modèle de référence {served} répond\u{a0}; {} a obtenu un meilleur score, mais n’a pas respecté la contrainte {}.",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "Route {r}\u{a0}: {served} répond, car le modèle de référence {baseline} ne peut pas traiter cette requête."
        ),
        ReasonCode::Pinned => {
            write!(f, "La route {r} est épinglée sur {served}")?;
            if let Some(by) = e.pinned_by {
                write!(f, " par {by}")?;
            }
            f.write_str("\u{a0}; le routage est suspendu jusqu’à ce que l’épinglage soit retiré.")
        }
        ReasonCode::PinUnservable => write!(
            f,
            "La route {r} est épinglée, mais le modèle épinglé ne peut pas traiter cette requête\u{a0}; le modèle de référence {served} répond."
        ),
        ReasonCode::RouteOff => write!(
            f,
            "Le routage est désactivé sur la route {r}\u{a0}: le modèle de référence {served} répond."
        ),
        ReasonCode::Shadow => write!(
            f,
            "La route {r} est en mode fantôme\u{a0}: le modèle de référence {served} répond\u{a0}; le routeur aurait choisi {chosen}."
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "La route {r} est en déploiement canari ({} des sessions)\u{a0}: cette session fait partie du canari, donc {served} répond à la place de {baseline}.",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "La route {r} est en déploiement canari ({} des sessions)\u{a0}: cette session est hors du canari, donc le modèle de référence {served} répond\u{a0}; le routeur a choisi {chosen}.",
            e.canary_pct()
        ),
    }
}

fn de(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "Route {r}: {served} antwortet anstelle des Referenzmodells {baseline}: Es erzielte eine höhere Bewertung bei einer Konfidenz von {}",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, " und geschätzt {} geringeren Kosten", Pct(s))?;
            }
            f.write_str(".")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "Route {r}: Das Referenzmodell {served} antwortet; kein Kandidat erzielte eine höhere Bewertung."
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "Route {r}: Das Referenzmodell {served} antwortet; kein Kandidat kann diese Anfrage bedienen."
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "Route {r}: Das Referenzmodell {served} antwortet; {} erzielte eine höhere Bewertung, aber die Konfidenz von {} liegt unter dem geforderten Minimum von {}.",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "Route {r}: Das Referenzmodell {served} antwortet; {} erzielte eine höhere Bewertung, erfüllte aber die Bedingung {} nicht.",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "Route {r}: {served} antwortet, weil das Referenzmodell {baseline} diese Anfrage nicht bedienen kann."
        ),
        ReasonCode::Pinned => {
            write!(f, "Die Route {r} wurde")?;
            if let Some(by) = e.pinned_by {
                write!(f, " von {by}")?;
            }
            write!(
                f,
                " fest an {served} gebunden; das Routing ist ausgesetzt, bis die Bindung aufgehoben wird."
            )
        }
        ReasonCode::PinUnservable => write!(
            f,
            "Die Route {r} ist fest an ein Modell gebunden, das diese Anfrage nicht bedienen kann; das Referenzmodell {served} antwortet."
        ),
        ReasonCode::RouteOff => write!(
            f,
            "Für die Route {r} ist das Routing ausgeschaltet: Das Referenzmodell {served} antwortet."
        ),
        ReasonCode::Shadow => write!(
            f,
            "Die Route {r} ist im Schattenmodus: Das Referenzmodell {served} antwortet; der Router hätte {chosen} gewählt."
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "Die Route {r} ist im Canary-Betrieb ({} der Sitzungen): Diese Sitzung gehört zum Canary, daher antwortet {served} anstelle von {baseline}.",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "Die Route {r} ist im Canary-Betrieb ({} der Sitzungen): Diese Sitzung gehört nicht zum Canary, daher antwortet das Referenzmodell {served}; der Router hat {chosen} gewählt.",
            e.canary_pct()
        ),
    }
}

fn ja(e: &Explanation<'_>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let (r, served, chosen, baseline) = (e.route, e.served, e.chosen, e.baseline);
    match e.reason {
        ReasonCode::Routed => {
            write!(
                f,
                "ルート「{r}」では、ベースラインの{baseline}に代わって{served}が応答します。スコアがより高く、信頼度は{}です",
                e.confidence_pct()
            )?;
            if let Some(s) = e.saving {
                write!(f, "。推定コストは{}低くなります", Pct(s))?;
            }
            f.write_str("。")
        }
        ReasonCode::BaselineBest => write!(
            f,
            "ルート「{r}」では、ベースラインの{served}が応答します。より高いスコアを得た候補はありませんでした。"
        ),
        ReasonCode::NoAlternative => write!(
            f,
            "ルート「{r}」では、ベースラインの{served}が応答します。このリクエストに対応できる候補がありません。"
        ),
        ReasonCode::LowConfidence => write!(
            f,
            "ルート「{r}」では、ベースラインの{served}が応答します。{}のスコアのほうが高かったものの、信頼度{}が必要な{}に達していません。",
            e.rival_or_chosen(),
            e.confidence_pct(),
            e.min_confidence_pct()
        ),
        ReasonCode::ConstraintFailed => write!(
            f,
            "ルート「{r}」では、ベースラインの{served}が応答します。{}のスコアのほうが高かったものの、制約{}を満たしていません。",
            e.rival_or_chosen(),
            e.constraint()
        ),
        ReasonCode::BaselineIncapable => write!(
            f,
            "ルート「{r}」では、ベースラインの{baseline}がこのリクエストに対応できないため、{served}が応答します。"
        ),
        ReasonCode::Pinned => {
            write!(f, "ルート「{r}」は")?;
            if let Some(by) = e.pinned_by {
                write!(f, "{by}によって")?;
            }
            write!(
                f,
                "{served}に固定されています。固定が解除されるまでルーティングは停止しています。"
            )
        }
        ReasonCode::PinUnservable => write!(
            f,
            "ルート「{r}」は固定されていますが、固定先のモデルがこのリクエストに対応できないため、ベースラインの{served}が応答します。"
        ),
        ReasonCode::RouteOff => write!(
            f,
            "ルート「{r}」はルーティングが無効のため、ベースラインの{served}が応答します。"
        ),
        ReasonCode::Shadow => write!(
            f,
            "ルート「{r}」はシャドーモードです。ベースラインの{served}が応答します。ルーティングが有効であれば{chosen}が選択されていました。"
        ),
        ReasonCode::CanaryIn => write!(
            f,
            "ルート「{r}」はカナリアリリース中です（対象はセッションの{}）。このセッションはカナリアの対象のため、{baseline}に代わって{served}が応答します。",
            e.canary_pct()
        ),
        ReasonCode::CanaryOut => write!(
            f,
            "ルート「{r}」はカナリアリリース中です（対象はセッションの{}）。このセッションはカナリアの対象外のため、ベースラインの{served}が応答します。ルーターは{chosen}を選択しました。",
            e.canary_pct()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REASONS: [ReasonCode; 12] = [
        ReasonCode::Routed,
        ReasonCode::BaselineBest,
        ReasonCode::NoAlternative,
        ReasonCode::LowConfidence,
        ReasonCode::ConstraintFailed,
        ReasonCode::BaselineIncapable,
        ReasonCode::Pinned,
        ReasonCode::PinUnservable,
        ReasonCode::RouteOff,
        ReasonCode::Shadow,
        ReasonCode::CanaryIn,
        ReasonCode::CanaryOut,
    ];

    /// Fails to compile when a reason is added, so that `REASONS` stays complete.
    #[test]
    fn reasons_lists_every_reason() {
        for r in REASONS {
            match r {
                ReasonCode::Routed
                | ReasonCode::BaselineBest
                | ReasonCode::NoAlternative
                | ReasonCode::LowConfidence
                | ReasonCode::ConstraintFailed
                | ReasonCode::BaselineIncapable
                | ReasonCode::Pinned
                | ReasonCode::PinUnservable
                | ReasonCode::RouteOff
                | ReasonCode::Shadow
                | ReasonCode::CanaryIn
                | ReasonCode::CanaryOut => {}
            }
        }
    }

    /// Every optional fact present, each distinct so that it can be found in the text.
    fn full(reason: ReasonCode) -> Explanation<'static> {
        Explanation {
            reason,
            route: "billing",
            served: "acme/served",
            chosen: "acme/chosen",
            baseline: "acme/base",
            rival: Some("acme/rival"),
            confidence: 0.734,
            min_confidence: Some(0.9),
            failed_constraint: Some("max_p95_latency_ms"),
            saving: Some(0.425),
            canary_percent: Some(15.0),
            pinned_by: Some("ops@example.com"),
            phase: 1,
        }
    }

    /// Every optional fact absent.
    fn bare(reason: ReasonCode) -> Explanation<'static> {
        Explanation {
            rival: None,
            min_confidence: None,
            failed_constraint: None,
            saving: None,
            canary_percent: None,
            pinned_by: None,
            ..full(reason)
        }
    }

    /// The English text as it was before the other languages were added.
    const EN_FULL: [&str; 12] = [
        "Route billing: acme/served serves instead of the baseline acme/base: it scored higher, with 73% confidence, at an estimated 42% lower cost.",
        "Route billing: the baseline acme/served serves; no candidate scored higher.",
        "Route billing: the baseline acme/served serves; no candidate can serve this request.",
        "Route billing: the baseline acme/served serves; acme/rival scored higher but confidence 73% is below the required 90%.",
        "Route billing: the baseline acme/served serves; acme/rival scored higher but failed the max_p95_latency_ms constraint.",
        "Route billing: acme/served serves because the baseline acme/base cannot serve this request.",
        "Route billing is pinned to acme/served by ops@example.com; routing is suspended until the pin is removed.",
        "Route billing is pinned, but the pinned model cannot serve this request; the baseline acme/served serves.",
        "Route billing has routing off: the baseline acme/served serves.",
        "Route billing is in shadow mode: the baseline acme/served serves; the router would have chosen acme/chosen.",
        "Route billing is in canary (15% of sessions): this session is in the canary, so acme/served serves instead of acme/base.",
        "Route billing is in canary (15% of sessions): this session is outside the canary, so the baseline acme/served serves; the router chose acme/chosen.",
    ];

    const EN_BARE: [&str; 12] = [
        "Route billing: acme/served serves instead of the baseline acme/base: it scored higher, with 73% confidence.",
        "Route billing: the baseline acme/served serves; no candidate scored higher.",
        "Route billing: the baseline acme/served serves; no candidate can serve this request.",
        "Route billing: the baseline acme/served serves; acme/chosen scored higher but confidence 73% is below the required 0%.",
        "Route billing: the baseline acme/served serves; acme/chosen scored higher but failed the ? constraint.",
        "Route billing: acme/served serves because the baseline acme/base cannot serve this request.",
        "Route billing is pinned to acme/served; routing is suspended until the pin is removed.",
        "Route billing is pinned, but the pinned model cannot serve this request; the baseline acme/served serves.",
        "Route billing has routing off: the baseline acme/served serves.",
        "Route billing is in shadow mode: the baseline acme/served serves; the router would have chosen acme/chosen.",
        "Route billing is in canary (0% of sessions): this session is in the canary, so acme/served serves instead of acme/base.",
        "Route billing is in canary (0% of sessions): this session is outside the canary, so the baseline acme/served serves; the router chose acme/chosen.",
    ];

    #[test]
    fn english_is_unchanged() {
        for (i, r) in REASONS.into_iter().enumerate() {
            assert_eq!(full(r).render(Lang::En), EN_FULL[i], "{r:?}");
            assert_eq!(bare(r).render(Lang::En), EN_BARE[i], "{r:?}");
        }
    }

    #[test]
    fn every_language_explains_every_reason() {
        for lang in Lang::ALL {
            for r in REASONS {
                for e in [full(r), bare(r)] {
                    let text = e.render(lang);
                    assert!(!text.trim().is_empty(), "{lang:?} {r:?}");
                    assert!(text.contains(e.served), "{lang:?} {r:?}: {text}");
                    assert!(text.contains(e.route), "{lang:?} {r:?}: {text}");
                    if lang != Lang::En {
                        assert_ne!(text, e.render(Lang::En), "{lang:?} {r:?}");
                    }
                }
            }
        }
    }

    /// Every language states the same facts as English: the same names and the same numbers.
    #[test]
    fn every_language_states_the_same_facts() {
        let facts_full = [
            "billing",
            "acme/served",
            "acme/chosen",
            "acme/base",
            "acme/rival",
            "73%",
            "90%",
            "42%",
            "15%",
            "max_p95_latency_ms",
            "ops@example.com",
        ];
        let facts_bare = [
            "billing",
            "acme/served",
            "acme/chosen",
            "acme/base",
            "73%",
            "0%",
            "?",
        ];
        for r in REASONS {
            for (e, facts) in [(full(r), &facts_full[..]), (bare(r), &facts_bare[..])] {
                let english = e.render(Lang::En);
                for lang in Lang::ALL {
                    let text = e.render(lang);
                    for fact in facts {
                        assert_eq!(
                            text.contains(fact),
                            english.contains(fact),
                            "{lang:?} {r:?} `{fact}`: {text} / {english}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn japanese_is_written_in_japanese_script() {
        let japanese = |c: char| matches!(c, '\u{3040}'..='\u{309f}' | '\u{30a0}'..='\u{30ff}' | '\u{4e00}'..='\u{9fff}');
        for r in REASONS {
            let text = full(r).render(Lang::Ja);
            assert!(text.chars().any(japanese), "{r:?}: {text}");
        }
    }

    #[test]
    fn rendering_fits_the_first_allocation() {
        for lang in Lang::ALL {
            for r in REASONS {
                for e in [full(r), bare(r)] {
                    let text = e.render(lang);
                    assert!(
                        text.len() <= e.capacity_hint(),
                        "{lang:?} {r:?}: {} > {}",
                        text.len(),
                        e.capacity_hint()
                    );
                }
            }
        }
    }

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

    #[test]
    fn negotiation_matches_regional_tags() {
        assert_eq!(Lang::negotiate(Some("es-419"), Lang::En), Lang::Es);
        assert_eq!(
            Lang::negotiate(Some("fr-CA;q=0.9, en;q=0.8"), Lang::De),
            Lang::Fr
        );
        assert_eq!(Lang::negotiate(Some("de_AT"), Lang::En), Lang::De);
        assert_eq!(
            Lang::negotiate(Some(" en-US , ja-JP;q=0.9 "), Lang::Ja),
            Lang::En
        );
    }

    #[test]
    fn negotiation_breaks_ties_by_order() {
        assert_eq!(
            Lang::negotiate(Some("de;q=0.5, fr;q=0.5"), Lang::En),
            Lang::De
        );
        assert_eq!(
            Lang::negotiate(Some("*;q=0.5, fr;q=0.5"), Lang::Ja),
            Lang::Ja
        );
        assert_eq!(
            Lang::negotiate(Some("fr;q=0.5, *;q=0.5"), Lang::Ja),
            Lang::Fr
        );
    }

    #[test]
    fn negotiation_ignores_malformed_quality_values() {
        for header in [
            "de;q=abc, fr;q=0.5",
            "de;q=1.5, fr;q=0.5",
            "de;q=-1, fr;q=0.5",
            "de;q=, fr;q=0.5",
            "de;q=inf, fr;q=0.5",
            "de;q=NaN, fr;q=0.5",
            "de;q=0.1234, fr;q=0.05",
            "de;q=.9, fr;q=0.5",
            "de;q=1.001, fr;q=0.5",
            "de;q=0.9x, fr;q=0.5",
        ] {
            assert_eq!(
                Lang::negotiate(Some(header), Lang::En),
                Lang::Fr,
                "{header}"
            );
        }
        assert_eq!(Lang::negotiate(Some("de;q=abc"), Lang::Pt), Lang::Pt);
        // Parameter names are case-insensitive, and spaces around `=` are tolerated.
        assert_eq!(
            Lang::negotiate(Some("de;Q=0.4, fr;q = 0.3"), Lang::En),
            Lang::De
        );
        assert_eq!(Lang::negotiate(Some("de;q=1.000, fr"), Lang::En), Lang::De);
    }

    #[test]
    fn negotiation_of_an_empty_header_falls_back() {
        for header in ["", "   ", ",", " , ;q=0.5 ,", ";"] {
            assert_eq!(
                Lang::negotiate(Some(header), Lang::Ja),
                Lang::Ja,
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_wildcard_never_picks_a_named_language() {
        // English is refused, anything else is welcome: the first other language.
        assert_eq!(Lang::negotiate(Some("en;q=0, *"), Lang::En), Lang::Es);
        // French is named at a lower weight than `*`: `*` means the others.
        assert_eq!(
            Lang::negotiate(Some("fr;q=0.2, *;q=0.8"), Lang::Fr),
            Lang::En
        );
        // Nothing acceptable at all still yields the fallback.
        assert_eq!(Lang::negotiate(Some("*;q=0"), Lang::De), Lang::De);
        assert_eq!(Lang::negotiate(Some("de;q=0"), Lang::De), Lang::De);
    }

    #[test]
    fn qvalues_parse_to_thousandths() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1."), Some(1000));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.05"), Some(50));
        assert_eq!(parse_qvalue("0.123"), Some(123));
        assert_eq!(parse_qvalue("0.999"), Some(999));
        // The grammar allows a dot with no decimals (`0*3DIGIT`).
        assert_eq!(parse_qvalue("0."), Some(0));
        for bad in [
            "", "2", "1.1", "0.1234", "+0.5", "0,5", "1e0", ".5", "x", "0.5 ",
        ] {
            assert_eq!(parse_qvalue(bad), None, "{bad:?}");
        }
    }
}
