//! Validated numeric newtypes (scores, percentages, money) and feedback normalisation.
//!
//! Values are checked when they are built and when they are decoded from the log
//! (parse, don't validate): a `UnitScore` in hand is always finite and within `0..=1`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The error for a number outside the range of its type.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{what} must be {expected}, got {value}")]
pub struct ScoreError {
    /// What was being built (e.g. `unit score`).
    pub what: &'static str,
    /// The accepted range, in words.
    pub expected: &'static str,
    /// The rejected value.
    pub value: f64,
}

/// A finite value within `0.0..=1.0`: normalised feedback, judge scores, confidence, and shares
/// such as a route's mirror fraction.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct UnitScore(f64);

impl UnitScore {
    /// The lowest score.
    pub const MIN: UnitScore = UnitScore(0.0);
    /// The highest score.
    pub const MAX: UnitScore = UnitScore(1.0);

    /// Returns the score, or an error when `value` is not finite or outside `0..=1`.
    pub fn new(value: f64) -> Result<Self, ScoreError> {
        if value.is_finite() && (0.0..=1.0).contains(&value) {
            // -0.0 is in range; store +0.0 so equal scores compare and serialise identically.
            Ok(Self(value + 0.0))
        } else {
            Err(ScoreError {
                what: "unit score",
                expected: "finite and within 0..=1",
                value,
            })
        }
    }

    /// Returns the score, clamping into `0..=1` (NaN becomes 0).
    pub fn saturating(value: f64) -> Self {
        if value.is_nan() {
            Self(0.0)
        } else {
            Self(value.clamp(0.0, 1.0) + 0.0)
        }
    }

    /// Returns the score as `f64`.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for UnitScore {
    type Error = ScoreError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<UnitScore> for f64 {
    fn from(value: UnitScore) -> Self {
        value.0
    }
}

impl fmt::Display for UnitScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// An amount of US dollars: finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Usd(f64);

impl Usd {
    /// Zero dollars (a known price of zero, e.g. a local model; never "price unknown").
    pub const ZERO: Usd = Usd(0.0);

    /// Returns the amount, or an error when `value` is not finite or negative.
    pub fn new(value: f64) -> Result<Self, ScoreError> {
        if value.is_finite() && value >= 0.0 {
            Ok(Self(value + 0.0))
        } else {
            Err(ScoreError {
                what: "usd amount",
                expected: "finite and not negative",
                value,
            })
        }
    }

    /// Returns the amount as `f64`.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Usd {
    type Error = ScoreError;
    fn try_from(value: f64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<Usd> for f64 {
    fn from(value: Usd) -> Self {
        value.0
    }
}

/// Declares a small bounded integer newtype.
macro_rules! bounded_int {
    ($(#[$meta:meta])* $name:ident, $what:literal, $max:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "i32", into = "i32")]
        pub struct $name(u8);

        impl $name {
            /// The largest accepted value.
            pub const MAX: u8 = $max;

            /// Zero, always valid.
            pub const ZERO: Self = Self(0);

            /// Returns the value, or an error when it is above the maximum.
            pub fn new(value: u8) -> Result<Self, ScoreError> {
                if value <= $max {
                    Ok(Self(value))
                } else {
                    Err(ScoreError { what: $what, expected: concat!("within 0..=", $max), value: f64::from(value) })
                }
            }

            /// Returns the value.
            pub const fn get(self) -> u8 {
                self.0
            }
        }

        impl TryFrom<i32> for $name {
            type Error = ScoreError;
            fn try_from(value: i32) -> Result<Self, Self::Error> {
                match u8::try_from(value) {
                    Ok(v) => Self::new(v),
                    Err(_) => Err(ScoreError { what: $what, expected: concat!("within 0..=", $max), value: f64::from(value) }),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> Self {
                i32::from(value.0)
            }
        }
    };
}

bounded_int!(
    /// A percentage `0..=100` (canary share).
    Percent,
    "percent",
    100
);
bounded_int!(
    /// The router's learning phase for a route, `0..=2` (the router defines what each phase means).
    Phase,
    "phase",
    2
);
bounded_int!(
    /// A Net Promoter Score answer, `0..=10`.
    Nps,
    "nps",
    10
);

/// Where an NPS answer puts the respondent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NpsCategory {
    /// 0..=6.
    Detractor,
    /// 7..=8.
    Passive,
    /// 9..=10.
    Promoter,
}

impl Nps {
    /// Returns the answer normalised to `0..=1` (`score / 10`).
    pub fn normalized(self) -> UnitScore {
        UnitScore::saturating(f64::from(self.0) / 10.0)
    }

    /// Returns the NPS category of the answer.
    pub const fn category(self) -> NpsCategory {
        match self.0 {
            0..=6 => NpsCategory::Detractor,
            7..=8 => NpsCategory::Passive,
            _ => NpsCategory::Promoter,
        }
    }
}

/// The scale a raw feedback score was given on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawScale {
    /// Thumbs down / up: exactly `-1` or `1`.
    Thumbs,
    /// Already within `0..=1`.
    Unit,
    /// One to five stars: `1..=5`.
    FivePoint,
    /// Net Promoter Score: `0..=10`.
    Nps,
    /// Percent: `0..=100`.
    Percent,
}

impl RawScale {
    /// Every scale, in schema symbol order.
    pub const ALL: [RawScale; 5] = [
        RawScale::Thumbs,
        RawScale::Unit,
        RawScale::FivePoint,
        RawScale::Nps,
        RawScale::Percent,
    ];

    /// Returns the Avro symbol of the scale.
    pub const fn as_str(self) -> &'static str {
        match self {
            RawScale::Thumbs => "thumbs",
            RawScale::Unit => "unit",
            RawScale::FivePoint => "five_point",
            RawScale::Nps => "nps",
            RawScale::Percent => "percent",
        }
    }
}

/// Returns `raw` normalised to `0..=1` from its scale.
///
/// thumbs `-1`/`1` → `0`/`1`; unit `0..=1` unchanged; five_point `1..=5` → `(raw - 1) / 4`;
/// nps `0..=10` → `raw / 10`; percent `0..=100` → `raw / 100`. Anything else (out of range,
/// NaN, infinite, a thumbs value other than ±1) is an error.
pub fn normalize(raw: f64, scale: RawScale) -> Result<UnitScore, ScoreError> {
    let out_of_range = |expected: &'static str| ScoreError {
        what: "raw feedback score",
        expected,
        value: raw,
    };
    let in_range = |lo: f64, hi: f64| raw.is_finite() && raw >= lo && raw <= hi;
    let normalized = match scale {
        RawScale::Thumbs if raw == 1.0 => 1.0,
        RawScale::Thumbs if raw == -1.0 => 0.0,
        RawScale::Thumbs => return Err(out_of_range("-1 or 1 on the thumbs scale")),
        RawScale::Unit if in_range(0.0, 1.0) => raw,
        RawScale::Unit => return Err(out_of_range("within 0..=1 on the unit scale")),
        RawScale::FivePoint if in_range(1.0, 5.0) => (raw - 1.0) / 4.0,
        RawScale::FivePoint => return Err(out_of_range("within 1..=5 on the five_point scale")),
        RawScale::Nps if in_range(0.0, 10.0) => raw / 10.0,
        RawScale::Nps => return Err(out_of_range("within 0..=10 on the nps scale")),
        RawScale::Percent if in_range(0.0, 100.0) => raw / 100.0,
        RawScale::Percent => return Err(out_of_range("within 0..=100 on the percent scale")),
    };
    UnitScore::new(normalized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalizes_each_scale() -> Result<(), ScoreError> {
        assert_eq!(normalize(1.0, RawScale::Thumbs)?.get(), 1.0);
        assert_eq!(normalize(-1.0, RawScale::Thumbs)?.get(), 0.0);
        assert!(normalize(0.0, RawScale::Thumbs).is_err());
        assert_eq!(normalize(0.25, RawScale::Unit)?.get(), 0.25);
        assert_eq!(normalize(1.0, RawScale::FivePoint)?.get(), 0.0);
        assert_eq!(normalize(3.0, RawScale::FivePoint)?.get(), 0.5);
        assert_eq!(normalize(5.0, RawScale::FivePoint)?.get(), 1.0);
        assert!(normalize(0.0, RawScale::FivePoint).is_err());
        assert_eq!(normalize(7.0, RawScale::Nps)?.get(), 0.7);
        assert!(normalize(11.0, RawScale::Nps).is_err());
        assert_eq!(normalize(50.0, RawScale::Percent)?.get(), 0.5);
        assert!(normalize(f64::NAN, RawScale::Unit).is_err());
        assert!(normalize(f64::INFINITY, RawScale::Percent).is_err());
        Ok(())
    }

    #[test]
    fn nps_categories_and_bounds() -> Result<(), ScoreError> {
        assert_eq!(Nps::new(6)?.category(), NpsCategory::Detractor);
        assert_eq!(Nps::new(8)?.category(), NpsCategory::Passive);
        assert_eq!(Nps::new(10)?.category(), NpsCategory::Promoter);
        assert!(Nps::new(11).is_err());
        assert_eq!(Nps::new(9)?.normalized().get(), 0.9);
        assert!(Percent::try_from(-1).is_err());
        assert!(Phase::new(3).is_err());
        Ok(())
    }

    #[test]
    fn unit_score_serde_validates() {
        assert!(serde_json::from_str::<UnitScore>("0.5").is_ok());
        assert!(serde_json::from_str::<UnitScore>("1.5").is_err());
        assert!(UnitScore::new(-0.0).is_ok_and(|s| s.get().is_sign_positive()));
    }

    proptest! {
        #[test]
        fn normalize_is_within_unit_range(raw in proptest::num::f64::ANY, scale in 0usize..5) {
            let scale = RawScale::ALL[scale];
            if let Ok(score) = normalize(raw, scale) {
                prop_assert!((0.0..=1.0).contains(&score.get()));
            }
        }

        #[test]
        fn normalize_is_monotonic(a in 0.0f64..=100.0, b in 0.0f64..=100.0) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let nl = normalize(lo, RawScale::Percent);
            let nh = normalize(hi, RawScale::Percent);
            prop_assert!(matches!((nl, nh), (Ok(l), Ok(h)) if l.get() <= h.get()));
        }
    }
}
