//! The data files compiled into the binary (`runtime/data/`, see its README.md for sources,
//! licences and the script that regenerates them). Only bytes and names live here; parsing
//! is done by the format modules.

/// A file compiled into the binary: its name under `runtime/data/` and its bytes.
#[derive(Clone, Copy, Debug)]
pub struct EmbeddedFile {
    pub name: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! embed {
    ($name:literal) => {
        EmbeddedFile {
            name: $name,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/", $name)),
        }
    };
}

/// Balanced Fashion-MNIST subset, training images: 10,000 = 1000 per class, IDX gz.
pub const FASHION_TRAIN_IMAGES: EmbeddedFile = embed!("fashion-mnist-subset/train-images-idx3-ubyte.gz");
/// Its labels.
pub const FASHION_TRAIN_LABELS: EmbeddedFile = embed!("fashion-mnist-subset/train-labels-idx1-ubyte.gz");
/// Balanced Fashion-MNIST subset, test images: 2,000 = 200 per class, IDX gz.
pub const FASHION_TEST_IMAGES: EmbeddedFile = embed!("fashion-mnist-subset/t10k-images-idx3-ubyte.gz");
/// Its labels.
pub const FASHION_TEST_LABELS: EmbeddedFile = embed!("fashion-mnist-subset/t10k-labels-idx1-ubyte.gz");
/// UCI 8x8 digits (1797 examples), scikit-learn's CSV, gzip.
pub const DIGITS: EmbeddedFile = embed!("digits.csv.gz");
/// Breast Cancer Wisconsin (Diagnostic), 569 x 30, scikit-learn's CSV.
pub const BREAST_CANCER: EmbeddedFile = embed!("breast_cancer.csv");
/// LIBSVM's heart_scale (Statlog Heart, 270 x 13, ±1 labels).
pub const HEART_SCALE: EmbeddedFile = embed!("heart_scale");

/// Every embedded file.
pub const ALL: [EmbeddedFile; 7] = [
    FASHION_TRAIN_IMAGES,
    FASHION_TRAIN_LABELS,
    FASHION_TEST_IMAGES,
    FASHION_TEST_LABELS,
    DIGITS,
    BREAST_CANCER,
    HEART_SCALE,
];

/// Fashion-MNIST class names, by label.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];
