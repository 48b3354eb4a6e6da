//! Small deterministic numerics: the normal CDF and the seed hashing.

/// Standard normal cumulative distribution function, |error| < 1.5e-7 (Abramowitz & Stegun
/// 7.1.26 applied to erf). Deterministic on every platform: only +, *, / and `exp`.
pub(crate) fn normal_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-x * x).exp();
    if z >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// FNV-1a over a sequence of byte strings, each followed by a separator so `("ab","c")` and
/// `("a","bc")` differ, then finalised with splitmix64 for a well-mixed 64-bit value.
pub(crate) fn hash_parts(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(std::iter::once(&0xffu8)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    splitmix64(h)
}

/// The splitmix64 finaliser.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform draw in [0, 1) from a seed and a stream label (independent draws per label).
pub(crate) fn unit_draw(seed: u64, stream: u64) -> f64 {
    let bits = splitmix64(seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15)) >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_matches_known_values() {
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746),
            (-1.0, 0.158_655_254),
            (1.644_853_627, 0.95),
            (2.326_347_874, 0.99),
            (-3.0, 0.001_349_898),
        ];
        for (z, p) in cases {
            assert!(
                (normal_cdf(z) - p).abs() < 2e-7,
                "Φ({z}) = {}",
                normal_cdf(z)
            );
        }
        assert!((normal_cdf(40.0) - 1.0).abs() < 1e-12);
        assert!(normal_cdf(-40.0) < 1e-12);
    }

    #[test]
    fn hash_parts_separates_boundaries() {
        assert_ne!(hash_parts(&[b"ab", b"c"]), hash_parts(&[b"a", b"bc"]));
        assert_eq!(hash_parts(&[b"a", b"b"]), hash_parts(&[b"a", b"b"]));
    }

    #[test]
    fn unit_draws_are_in_range_and_spread() {
        let draws: Vec<f64> = (0..10_000).map(|i| unit_draw(splitmix64(i), 1)).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        let mean = draws.iter().sum::<f64>() / draws.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
    }
}
