//! Philox 4x32-10 known answers (Random123 kat_vectors) and the statistics,
//! determinism and independence of kiln's random-element mapping.

use kiln_ir::philox::{normal_from_u32, philox4x32_10, random_f64, random_words, uniform_from_u32};
use kiln_ir::Distribution;

#[test]
fn random123_known_answers() {
    let cases: [([u32; 4], [u32; 2], [u32; 4]); 3] = [
        ([0; 4], [0; 2], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
        (
            [u32::MAX; 4],
            [u32::MAX; 2],
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
        ),
        (
            [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
            [0xa4093822, 0x299f31d0],
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
        ),
    ];
    for (ctr, key, want) in cases {
        assert_eq!(philox4x32_10(ctr, key), want, "ctr {ctr:08x?} key {key:08x?}");
    }
}

#[test]
fn element_mapping_matches_the_documented_counter_layout() {
    let (seed, step, stream, index) = (-7i32, 3i32, 5u32, (2u64 << 32) | 11);
    let w = philox4x32_10([11, 2, 3, 5], [(-7i32) as u32, 0]);
    assert_eq!(random_words(seed, step, stream, index), w);
    assert_eq!(
        random_f64(Distribution::Uniform, seed, step, stream, index),
        uniform_from_u32(w[0])
    );
    let z = (-2.0 * uniform_from_u32(w[0]).ln()).sqrt() * (2.0 * std::f64::consts::PI * uniform_from_u32(w[1])).cos();
    assert_eq!(random_f64(Distribution::Normal, seed, step, stream, index), z);
    assert_eq!(normal_from_u32(w[0], w[1]), z);
}

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    (m, xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n)
}

#[test]
fn uniform_draws_are_in_the_open_interval_with_the_right_moments() {
    let xs: Vec<f64> = (0..100_000)
        .map(|i| random_f64(Distribution::Uniform, 42, 0, 0, i))
        .collect();
    assert!(xs.iter().all(|&x| x > 0.0 && x < 1.0));
    let (m, v) = mean_var(&xs);
    // Standard errors: mean 0.0009, variance 0.0003.
    assert!((m - 0.5).abs() < 0.005, "mean {m}");
    assert!((v - 1.0 / 12.0).abs() < 0.002, "var {v}");
    // Roughly flat histogram over 10 bins (each ~10000 +- 100).
    let mut bins = [0usize; 10];
    xs.iter().for_each(|&x| bins[(x * 10.0) as usize] += 1);
    assert!(bins.iter().all(|&b| (9_500..10_500).contains(&b)), "{bins:?}");
}

#[test]
fn normal_draws_have_the_right_moments() {
    let xs: Vec<f64> = (0..100_000)
        .map(|i| random_f64(Distribution::Normal, 1, 2, 3, i))
        .collect();
    assert!(xs.iter().all(|x| x.is_finite()));
    let (m, v) = mean_var(&xs);
    assert!(m.abs() < 0.02, "mean {m}");
    assert!((v - 1.0).abs() < 0.03, "var {v}");
    let within_1sd = xs.iter().filter(|x| x.abs() < 1.0).count() as f64 / xs.len() as f64;
    assert!((within_1sd - 0.6827).abs() < 0.01, "{within_1sd}");
    let kurt = xs.iter().map(|x| (x - m).powi(4)).sum::<f64>() / xs.len() as f64 / (v * v);
    assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
}

#[test]
fn draws_are_deterministic_and_keyed_by_seed_step_stream_and_index() {
    let draw = |seed, step, stream| -> Vec<f64> {
        (0..64)
            .map(|i| random_f64(Distribution::Uniform, seed, step, stream, i))
            .collect()
    };
    let base = draw(7, 1, 0);
    assert_eq!(base, draw(7, 1, 0));
    for other in [draw(8, 1, 0), draw(7, 2, 0), draw(7, 1, 1), draw(-7, 1, 0)] {
        let same = base.iter().zip(&other).filter(|(a, b)| a == b).count();
        assert_eq!(same, 0, "independent draws should not coincide");
    }
    // Indices past 2^32 use the second counter word.
    let lo = random_f64(Distribution::Uniform, 7, 1, 0, 5);
    let hi = random_f64(Distribution::Uniform, 7, 1, 0, 5 + (1u64 << 32));
    assert_ne!(lo, hi);
    // Neighbouring draws are uncorrelated (lag-1 correlation of 100k draws).
    let xs: Vec<f64> = (0..100_000)
        .map(|i| random_f64(Distribution::Normal, 9, 0, 0, i))
        .collect();
    let c = xs.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / (xs.len() - 1) as f64;
    assert!(c.abs() < 0.015, "lag-1 correlation {c}");
}
