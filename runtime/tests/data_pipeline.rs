//! Dataset operations (shuffle, held-out split, class selection, standardisation),
//! fixed-shape batching, and the registry, on synthetic and embedded data.

use std::collections::BTreeSet;
use std::path::Path;

use kiln_runtime::data::{dataset_info, Batch, DataError, Dataset, Splits, Standardizer};

/// `n` examples of shape [2]: features (i, -i), label i % k. Each row identifies its example.
fn tagged(n: usize, k: usize) -> Dataset {
    let features = (0..n).flat_map(|i| [i as f32, -(i as f32)]).collect();
    let labels = (0..n).map(|i| (i % k) as i32).collect();
    Dataset::new("tagged", features, labels, vec![2], k).unwrap()
}

/// Checks that every row of `d` is an intact (features, label) pair of `tagged(_, k)`.
fn assert_rows_intact(d: &Dataset, k: usize) {
    for i in 0..d.len() {
        let (x, y) = d.example(i);
        assert_eq!(x[1], -x[0]);
        assert_eq!(y, (x[0] as usize % k) as i32);
    }
}

fn ids(d: &Dataset) -> Vec<usize> {
    (0..d.len()).map(|i| d.example(i).0[0] as usize).collect()
}

#[test]
fn dataset_new_validates() {
    let e = Dataset::new("x", vec![0.0; 5], vec![0, 1], vec![2], 2).unwrap_err();
    assert!(
        e.to_string()
            .contains("2 labels of shape [2] need 4 feature values, got 5"),
        "{e}"
    );
    let e = Dataset::new("x", vec![0.0; 4], vec![0, 2], vec![2], 2).unwrap_err();
    assert!(
        matches!(e, DataError::LabelOutOfRange { index: 1, label: 2, .. }),
        "{e}"
    );
    let e = Dataset::new("x", vec![0.0; 4], vec![0, -1], vec![2], 2).unwrap_err();
    assert!(matches!(e, DataError::LabelOutOfRange { label: -1, .. }), "{e}");
    assert!(Dataset::new("x", vec![], vec![], vec![0], 2).is_err());
    assert!(tagged(3, 2).with_class_names(["a"]).is_err());
    assert_eq!(
        tagged(3, 2).with_class_names(["a", "b"]).unwrap().class_names(),
        ["a", "b"]
    );
    let r = tagged(3, 2).reshaped(vec![1, 2, 1]).unwrap();
    assert_eq!((r.sample_shape(), r.feature_dim()), (&[1usize, 2, 1][..], 2));
    assert!(tagged(3, 2).reshaped(vec![3]).is_err());
    assert_eq!(r.flattened().sample_shape(), [2]);
}

#[test]
fn shuffle_is_deterministic_seed_dependent_and_keeps_pairs() {
    let mut a = tagged(101, 3);
    let mut b = tagged(101, 3);
    let mut c = tagged(101, 3);
    a.shuffle(5).unwrap();
    b.shuffle(5).unwrap();
    c.shuffle(6).unwrap();
    assert_eq!(a, b);
    assert_ne!(ids(&a), ids(&c));
    assert_ne!(ids(&a), (0..101).collect::<Vec<_>>());
    assert_rows_intact(&a, 3);
    assert_eq!(ids(&a).into_iter().collect::<BTreeSet<_>>().len(), 101);
    assert_eq!(a.class_counts(), tagged(101, 3).class_counts());
}

#[test]
fn holdout_split_is_stratified_disjoint_ordered_and_seeded() {
    let all = tagged(103, 4); // class counts 26, 26, 26, 25
    let (rest, held) = all.split_holdout(0.2, 9).unwrap();
    // round(0.2 * 26) = 5, round(0.2 * 25) = 5.
    assert_eq!(held.class_counts(), [5, 5, 5, 5]);
    assert_eq!(rest.class_counts(), [21, 21, 21, 20]);
    let (r, h) = (ids(&rest), ids(&held));
    assert!(
        r.windows(2).all(|w| w[0] < w[1]) && h.windows(2).all(|w| w[0] < w[1]),
        "order kept"
    );
    let union: BTreeSet<usize> = r.iter().chain(&h).copied().collect();
    assert_eq!(union.len(), 103);
    assert_rows_intact(&held, 4);
    assert_eq!(all.split_holdout(0.2, 9).unwrap(), (rest.clone(), held.clone()));
    assert_ne!(ids(&all.split_holdout(0.2, 10).unwrap().1), h);
    for bad in [0.0, 1.0, -0.1, f64::NAN] {
        assert!(all.split_holdout(bad, 0).is_err(), "fraction {bad}");
    }
    assert!(
        tagged(2, 2).split_holdout(0.1, 0).is_err(),
        "nothing held out is an error"
    );
}

#[test]
fn select_classes_relabels_in_the_given_order() {
    let d = tagged(20, 5).with_class_names(["a", "b", "c", "d", "e"]).unwrap();
    let b = d.select_classes(&[3, 0]).unwrap();
    assert_eq!(b.num_classes(), 2);
    assert_eq!(b.class_names(), ["d", "a"]);
    assert_eq!(ids(&b), [0, 3, 5, 8, 10, 13, 15, 18]);
    assert_eq!(b.labels(), [1, 0, 1, 0, 1, 0, 1, 0]);
    assert!(d.select_classes(&[5]).is_err());
    assert!(d.select_classes(&[1, 1]).is_err());
    assert!(d.select(&[20]).is_err());
}

#[test]
fn standardizer_uses_training_statistics_only() {
    // Feature 0: 0..8, feature 1: constant 3.
    let train = Dataset::new(
        "tr",
        (0..8).flat_map(|i| [i as f32, 3.0]).collect(),
        vec![0; 8],
        vec![2],
        1,
    )
    .unwrap();
    let test = Dataset::new("te", vec![10.0, 3.0, -1.0, 5.0], vec![0, 0], vec![2], 1).unwrap();
    let mut s = Splits {
        train,
        test,
        source: "t".into(),
    };
    let st = s.standardize().unwrap();
    // mean 3.5, population std sqrt(5.25); the constant feature keeps std 1.
    assert_eq!(st.mean, [3.5, 3.0]);
    assert!((st.std[0] - 5.25f32.sqrt()).abs() < 1e-6 && st.std[1] == 1.0);
    let col0: Vec<f32> = (0..8).map(|i| s.train.example(i).0[0]).collect();
    let mean: f32 = col0.iter().sum::<f32>() / 8.0;
    let var: f32 = col0.iter().map(|x| (x - mean) * (x - mean)).sum::<f32>() / 8.0;
    assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
    assert!((s.test.example(0).0[0] - (10.0 - 3.5) / 5.25f32.sqrt()).abs() < 1e-6);
    assert_eq!(s.test.example(1).0[1], 2.0, "constant feature is centred only");
    let other = tagged(3, 1).reshaped(vec![1, 2]).unwrap().flattened();
    let mut three = Dataset::new("w", vec![0.0; 6], vec![0, 0], vec![3], 1).unwrap();
    assert!(Standardizer::fit(&other).unwrap().apply(&mut three).is_err());
}

#[test]
fn train_batches_have_a_fixed_shape_and_drop_the_remainder() {
    let d = tagged(103, 4).reshaped(vec![1, 2]).unwrap();
    assert_eq!(d.train_steps_per_epoch(10), 10);
    let it = d.train_batches(10, 42, 0).unwrap();
    assert_eq!(it.len(), 10);
    let order = it.order().to_vec();
    let batches: Vec<Batch> = it.collect();
    assert_eq!(batches.len(), 10);
    let mut seen = Vec::new();
    for b in &batches {
        assert_eq!(b.shape, [10, 1, 2]);
        assert_eq!(b.flat_shape(), [10, 2]);
        assert_eq!((b.features.len(), b.labels.len(), b.valid), (20, 10, 10));
        assert!(b.is_full() && b.mask() == vec![1.0; 10]);
        for (row, &i) in b.indices.iter().enumerate() {
            let (x, y) = d.example(i);
            assert_eq!((&b.features[row * 2..row * 2 + 2], b.labels[row]), (x, y));
        }
        seen.extend_from_slice(&b.indices);
    }
    // The epoch visits order[..100]; the last 3 of the permutation are dropped.
    assert_eq!(seen, order[..100]);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 100);
    // Same (seed, epoch) -> same batches; another epoch or seed -> another order.
    let again: Vec<Batch> = d.train_batches(10, 42, 0).unwrap().collect();
    assert_eq!(again, batches);
    assert_ne!(d.train_batches(10, 42, 1).unwrap().order(), order);
    assert_ne!(d.train_batches(10, 43, 0).unwrap().order(), order);
}

#[test]
fn train_batch_size_errors() {
    let d = tagged(7, 2);
    let e = d.train_batches(8, 0, 0).unwrap_err();
    assert!(
        e.to_string()
            .contains("batch size 8 is larger than the 7 training examples"),
        "{e}"
    );
    assert!(d.train_batches(0, 0, 0).is_err());
    assert!(d.eval_batches(0).is_err());
    assert_eq!(d.train_batches(7, 0, 0).unwrap().count(), 1);
}

#[test]
fn eval_batches_cover_everything_once_and_pad_the_last() {
    let d = tagged(23, 5);
    assert_eq!(d.eval_steps(10), 3);
    let batches: Vec<Batch> = d.eval_batches(10).unwrap().collect();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|b| b.shape == [10, 2] && b.labels.len() == 10));
    assert_eq!(batches.iter().map(|b| b.valid).collect::<Vec<_>>(), [10, 10, 3]);
    let all: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(all, (0..23).collect::<Vec<_>>());
    let last = &batches[2];
    assert!(!last.is_full());
    assert_eq!(last.mask(), [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(last.features[..6], [20.0, -20.0, 21.0, -21.0, 22.0, -22.0]);
    assert!(last.features[6..].iter().all(|&x| x == 0.0) && last.labels[3..].iter().all(|&l| l == 0));
    // Masked accuracy over the padded batches counts each example exactly once.
    let correct: f32 = batches
        .iter()
        .map(|b| {
            b.mask()
                .iter()
                .zip(&b.labels)
                .zip(&b.indices)
                .map(|((m, &l), &i)| m * f32::from(l == d.labels()[i]))
                .sum::<f32>()
        })
        .sum();
    assert_eq!(correct, 23.0);
    // Exact multiple: no padding. Batch larger than the set: one padded batch.
    assert!(tagged(20, 5).eval_batches(10).unwrap().all(|b| b.is_full()));
    let big: Vec<Batch> = d.eval_batches(64).unwrap().collect();
    assert_eq!((big.len(), big[0].valid, big[0].batch_size()), (1, 23, 64));
}

#[test]
fn next_into_reuses_the_batch_and_matches_the_iterator() {
    let d = tagged(30, 3);
    let mut it = d.train_batches(8, 1, 2).unwrap();
    let mut b = Batch {
        features: vec![9.0; 3],
        labels: vec![],
        shape: vec![],
        valid: 0,
        indices: vec![],
    };
    let expected: Vec<Batch> = d.train_batches(8, 1, 2).unwrap().collect();
    let mut k = 0;
    while it.next_into(&mut b) {
        assert_eq!(b, expected[k]);
        k += 1;
    }
    assert_eq!(k, 3);
    let mut ev = d.eval_batches(8).unwrap();
    let mut n = 0;
    while ev.next_into(&mut b) {
        n += b.valid;
    }
    assert_eq!(n, 30);
}

// ---------------------------------------------------------------- registry

#[test]
fn registry_loads_every_embedded_set_with_its_defaults() {
    let f = Dataset::load("fashion-mnist", None).unwrap();
    assert_eq!(
        (f.train.len(), f.test.len(), f.train.num_classes()),
        (10_000, 2_000, 10)
    );
    assert_eq!(f.train.class_names()[9], "Ankle boot");
    assert_eq!(f.train.value_range(), Some((0.0, 1.0)));
    assert_eq!(f.source, "embedded:fashion-mnist-subset");
    let b = f.train.train_batches(128, 0, 0).unwrap().next().unwrap();
    assert_eq!(b.shape, [128, 1, 28, 28]);
    assert_eq!(
        f.train.train_steps_per_epoch(128),
        78,
        "10000 / 128, remainder 16 dropped"
    );

    let d = Dataset::load("digits", None).unwrap();
    assert_eq!(
        (d.train.len(), d.test.len(), d.train.sample_shape()),
        (1438, 359, &[1usize, 8, 8][..])
    );
    assert_eq!(d.test.class_counts(), [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]);
    assert_eq!(d.train.value_range().unwrap().1, 1.0);

    let bc = Dataset::load("breast_cancer", None).unwrap();
    assert_eq!((bc.train.len(), bc.test.len(), bc.train.feature_dim()), (456, 113, 30));
    assert_eq!(bc.test.class_counts(), [42, 71]);
    let st = Standardizer::fit(&bc.train).unwrap();
    assert!(st.mean.iter().all(|m| m.abs() < 1e-4) && st.std.iter().all(|s| (s - 1.0).abs() < 1e-4));

    let h = Dataset::load("Heart-Scale", None).unwrap();
    assert_eq!((h.train.len(), h.test.len(), h.train.feature_dim()), (216, 54, 13));
    assert_eq!(h.test.class_counts(), [30, 24]);
    // Loading twice gives the same split.
    assert_eq!(Dataset::load("heart-scale", None).unwrap(), h);
}

#[test]
fn registry_errors_are_helpful() {
    let e = Dataset::load("fasion-mnist", None).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, DataError::UnknownDataset { .. }));
    assert!(
        msg.contains("digits") && msg.contains("heart-scale") && msg.contains("did you mean `fashion-mnist`"),
        "{msg}"
    );
    assert!(!Dataset::load("cifar10", None)
        .unwrap_err()
        .to_string()
        .contains("did you mean"));
    let e = Dataset::load("digits", Some(Path::new("/tmp"))).unwrap_err();
    assert!(e.to_string().contains("digits is embedded"), "{e}");
    let e = Dataset::load("mnist", None).unwrap_err();
    assert!(
        matches!(e, DataError::Unavailable { .. }) && e.to_string().contains("CC BY-SA"),
        "{e}"
    );
    let e = Dataset::load("fashion-mnist", Some(Path::new("/nonexistent/fmnist"))).unwrap_err();
    assert!(
        matches!(e, DataError::FileNotFound { .. }) && e.to_string().contains("/nonexistent/fmnist"),
        "{e}"
    );
    if !Path::new("/usr/share/datasets/fashion-mnist").exists() {
        let e = Dataset::load("fashion-mnist-full", None).unwrap_err();
        assert!(e.to_string().contains("apt-get install dataset-fashion-mnist"), "{e}");
    }
    assert_eq!(dataset_info("MNIST").unwrap().name, "mnist");
}
