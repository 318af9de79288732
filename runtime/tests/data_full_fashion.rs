//! The full Fashion-MNIST set (60,000 + 10,000), tested only where it is installed:
//! `$KILN_FASHION_MNIST_DIR` if set, else `/usr/share/datasets/fashion-mnist` (Debian
//! `dataset-fashion-mnist`). Otherwise the test prints a skip message and passes.
//! It also proves the embedded subset is exactly the first 1000 / 200 images of each class.

use std::path::PathBuf;

use kiln_runtime::data::registry::SYSTEM_FASHION_MNIST_DIR;
use kiln_runtime::data::{load_idx_dir, Dataset};

fn full_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("KILN_FASHION_MNIST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(SYSTEM_FASHION_MNIST_DIR));
    dir.is_dir().then_some(dir)
}

/// Indices of the first `per_class` examples of each class, in file order.
fn first_per_class(d: &Dataset, per_class: usize) -> Vec<usize> {
    let mut taken = vec![0; d.num_classes()];
    (0..d.len())
        .filter(|&i| {
            let c = d.labels()[i] as usize;
            taken[c] += 1;
            taken[c] <= per_class
        })
        .collect()
}

#[test]
fn full_fashion_mnist_loads_and_contains_the_embedded_subset() {
    let Some(dir) = full_dir() else {
        eprintln!(
            "skipped: full Fashion-MNIST not found ({SYSTEM_FASHION_MNIST_DIR} absent and KILN_FASHION_MNIST_DIR unset); \
             `apt-get install dataset-fashion-mnist` to run this test"
        );
        return;
    };
    let full = load_idx_dir(&dir, "fashion-mnist-full", 10).unwrap();
    assert_eq!((full.train.len(), full.test.len()), (60_000, 10_000));
    assert_eq!(full.train.class_counts(), vec![6000; 10]);
    assert_eq!(full.test.class_counts(), vec![1000; 10]);
    assert_eq!(full.train.sample_shape(), [1, 28, 28]);

    let subset = Dataset::load("fashion-mnist", None).unwrap();
    for (full, sub, n, last) in [
        (&full.train, &subset.train, 1000, 10_647),
        (&full.test, &subset.test, 200, 2_087),
    ] {
        let keep = first_per_class(full, n);
        assert_eq!(*keep.last().unwrap(), last, "as recorded in runtime/data/README.md");
        let mut expected = full.select(&keep).unwrap();
        expected.scale(1.0 / 255.0);
        assert_eq!(expected.labels(), sub.labels());
        assert_eq!(expected.features(), sub.features());
    }
    drop(full);

    // The registry reads the same directory, scaled to [0, 1] and with class names.
    let via_registry = Dataset::load("fashion-mnist-full", Some(&dir)).unwrap();
    assert_eq!(via_registry.test.len(), 10_000);
    assert_eq!(via_registry.test.value_range(), Some((0.0, 1.0)));
    assert_eq!(via_registry.test.class_names()[0], "T-shirt/top");
    eprintln!("full Fashion-MNIST checked from {}", dir.display());
}
