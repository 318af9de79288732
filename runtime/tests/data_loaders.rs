//! Loaders on real data (the embedded files, checked against statistics computed
//! independently in Python by runtime/data/make_fashion_subset.py and recorded in
//! runtime/data/README.md) and on corrupt or missing files written to a temp dir.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use kiln_runtime::data::embedded::{self, EmbeddedFile};
use kiln_runtime::data::{
    idx, libsvm, load_idx_dir, parse_digits_csv, parse_header_csv, parse_idx, parse_libsvm, read_idx, DataError,
};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// An unsigned-byte IDX file with `dims` and `data`.
fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn err_text<T: std::fmt::Debug>(r: Result<T, DataError>) -> (DataError, String) {
    let e = r.expect_err("expected an error");
    let msg = e.to_string();
    (e, msg)
}

/// A small synthetic image set: `n` images of 2x3, pixel = (i * 7 + k) % 256, label i % 10.
fn synthetic(n: usize) -> (Vec<u8>, Vec<u8>) {
    let images: Vec<u8> = (0..n * 6).map(|k| ((k / 6) * 7 + k % 6) as u8).collect();
    let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    (idx_bytes(&[n as u32, 2, 3], &images), idx_bytes(&[n as u32], &labels))
}

// ---------------------------------------------------------------- IDX

#[test]
fn idx_raw_and_gzip_parse_to_the_same_array() {
    let bytes = idx_bytes(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]);
    let raw = parse_idx(&bytes, "raw").unwrap();
    assert_eq!(raw.dims, [3, 2, 2]);
    assert_eq!(raw.data[11], 255);
    assert_eq!(parse_idx(&gz(&bytes), "gz").unwrap(), raw);
}

#[test]
fn idx_corruptions_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = idx_bytes(&[2, 2, 2], &[1; 8]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "truncated"),
        ("short_magic", vec![0, 0], "truncated"),
        (
            "bad_magic",
            {
                let mut b = good.clone();
                b[0] = 0x50;
                b
            },
            "bad magic",
        ),
        (
            "f32_type",
            {
                let mut b = good.clone();
                b[2] = 0x0D;
                b
            },
            "0x0d (f32) is not supported",
        ),
        ("rank0", vec![0, 0, 8, 0], "rank 0"),
        ("short_header", good[..9].to_vec(), "header of a rank-3 array"),
        ("short_body", good[..good.len() - 1].to_vec(), "truncated"),
        ("trailing", [good.clone(), vec![0, 0]].concat(), "2 trailing bytes"),
        (
            "bad_gzip",
            {
                let mut b = gz(&good);
                let n = b.len();
                b.truncate(n / 2);
                b
            },
            "corrupt gzip",
        ),
    ];
    for (name, bytes, expect) in cases {
        let path = write(dir.path(), name, &bytes);
        let (_, msg) = err_text(read_idx(&path));
        assert!(
            msg.contains(&path.display().to_string()),
            "{name}: `{msg}` should name the file"
        );
        assert!(
            msg.to_lowercase().contains(expect),
            "{name}: `{msg}` should say `{expect}`"
        );
    }
    let (e, msg) = err_text(read_idx(&dir.path().join("nope")));
    assert!(matches!(e, DataError::Io { .. }) && msg.contains("nope"), "{msg}");
}

#[test]
fn idx_truncated_body_reports_expected_and_found_sizes() {
    let bytes = idx_bytes(&[10, 28, 28], &[0; 100]);
    match parse_idx(&bytes, "t.idx") {
        Err(DataError::Truncated { expected, found, .. }) => {
            assert_eq!(expected, 16 + 7840);
            assert_eq!(found, 116);
        }
        other => panic!("expected Truncated, got {other:?}"),
    }
}

#[test]
fn image_label_pairs_are_validated() {
    let (images, labels) = synthetic(5);
    let img = parse_idx(&images, "img").unwrap();
    let lab = parse_idx(&labels, "lab").unwrap();
    let ds = idx::images_and_labels("syn", (&img, "img"), (&lab, "lab"), 10).unwrap();
    assert_eq!((ds.len(), ds.sample_shape()), (5, &[1usize, 2, 3][..]));
    assert_eq!(ds.example(4), (&[28.0f32, 29.0, 30.0, 31.0, 32.0, 33.0][..], 4));

    let short_labels = parse_idx(&idx_bytes(&[4], &[0, 1, 2, 3]), "lab4").unwrap();
    let (e, msg) = err_text(idx::images_and_labels(
        "syn",
        (&img, "img"),
        (&short_labels, "lab4"),
        10,
    ));
    assert!(
        matches!(
            e,
            DataError::CountMismatch {
                images: 5,
                labels: 4,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("img") && msg.contains("lab4"), "{msg}");

    let (e, msg) = err_text(idx::images_and_labels("syn", (&img, "img"), (&lab, "lab"), 3));
    assert!(
        matches!(
            e,
            DataError::LabelOutOfRange {
                index: 3,
                label: 3,
                num_classes: 3,
                ..
            }
        ),
        "{msg}"
    );

    let (e, _) = err_text(idx::images_and_labels("syn", (&lab, "lab"), (&lab, "lab"), 10));
    assert!(matches!(e, DataError::BadDims { .. }));
    let (e, _) = err_text(idx::images_and_labels("syn", (&img, "img"), (&img, "img"), 10));
    assert!(matches!(e, DataError::BadDims { .. }));
    let empty = parse_idx(&idx_bytes(&[0, 2, 3], &[]), "e").unwrap();
    let no_labels = parse_idx(&idx_bytes(&[0], &[]), "el").unwrap();
    let (e, _) = err_text(idx::images_and_labels("syn", (&empty, "e"), (&no_labels, "el"), 10));
    assert!(matches!(e, DataError::Empty { .. }));
}

#[test]
fn idx_directory_with_mixed_gzip_and_raw_files() {
    let dir = tempfile::tempdir().unwrap();
    let (tr_i, tr_l) = synthetic(23);
    let (te_i, te_l) = synthetic(7);
    write(dir.path(), "train-images-idx3-ubyte.gz", &gz(&tr_i));
    write(dir.path(), "train-labels-idx1-ubyte", &tr_l);
    write(dir.path(), "t10k-images-idx3-ubyte", &te_i);
    write(dir.path(), "t10k-labels-idx1-ubyte.gz", &gz(&te_l));
    let s = load_idx_dir(dir.path(), "syn", 10).unwrap();
    assert_eq!((s.train.len(), s.test.len()), (23, 7));
    assert_eq!(s.train.labels()[..12], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    assert_eq!(s.source, dir.path().display().to_string());

    // A test set of another image size is rejected.
    let odd = idx_bytes(&[7, 3, 2], &[0; 42]);
    write(dir.path(), "t10k-images-idx3-ubyte", &odd);
    let (e, msg) = err_text(load_idx_dir(dir.path(), "syn", 10));
    assert!(
        matches!(e, DataError::BadDims { .. }) && msg.contains("t10k-images"),
        "{msg}"
    );
}

#[test]
fn idx_directory_missing_file_lists_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let (tr_i, tr_l) = synthetic(3);
    write(dir.path(), "train-images-idx3-ubyte.gz", &gz(&tr_i));
    write(dir.path(), "train-labels-idx1-ubyte.gz", &gz(&tr_l));
    write(dir.path(), "t10k-images-idx3-ubyte.gz", &gz(&tr_i));
    let (e, msg) = err_text(load_idx_dir(dir.path(), "fashion-mnist", 10));
    assert!(matches!(e, DataError::FileNotFound { .. }), "{msg}");
    assert!(
        msg.contains("test labels") && msg.contains("t10k-labels-idx1-ubyte.gz"),
        "{msg}"
    );
    assert!(msg.contains("fashion-mnist"), "{msg}");

    let (e, _) = err_text(load_idx_dir(&dir.path().join("absent"), "fashion-mnist", 10));
    assert!(matches!(e, DataError::FileNotFound { .. }));
}

// ---------------------------------------------------------------- embedded Fashion-MNIST subset

fn embedded_pair(img: &EmbeddedFile, lab: &EmbeddedFile) -> kiln_runtime::data::Dataset {
    idx::parse_idx_pair("fashion-mnist", (img.bytes, img.name), (lab.bytes, lab.name), 10).unwrap()
}

fn pixel_sum(ds: &kiln_runtime::data::Dataset) -> u64 {
    ds.features().iter().map(|&x| x as u64).sum()
}

#[test]
fn embedded_fashion_subset_is_balanced_and_matches_the_python_statistics() {
    let train = embedded_pair(&embedded::FASHION_TRAIN_IMAGES, &embedded::FASHION_TRAIN_LABELS);
    let test = embedded_pair(&embedded::FASHION_TEST_IMAGES, &embedded::FASHION_TEST_LABELS);
    assert_eq!((train.len(), test.len()), (10_000, 2_000));
    assert_eq!(train.sample_shape(), [1, 28, 28]);
    assert_eq!(train.class_counts(), vec![1000; 10]);
    assert_eq!(test.class_counts(), vec![200; 10]);
    // Golden values printed by make_fashion_subset.py (see runtime/data/README.md).
    assert_eq!(pixel_sum(&train), 573_133_949);
    assert_eq!(pixel_sum(&test), 114_072_606);
    assert_eq!(train.labels()[..10], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    assert_eq!(test.labels()[..10], [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    assert_eq!(train.value_range(), Some((0.0, 255.0)));
    for f in embedded::ALL {
        assert!(!f.bytes.is_empty(), "{} is empty", f.name);
    }
}

// ---------------------------------------------------------------- scikit-learn CSVs

#[test]
fn embedded_digits_parse_with_the_known_counts() {
    let f = embedded::DIGITS;
    let d = parse_digits_csv(f.bytes, f.name).unwrap();
    assert_eq!((d.len(), d.feature_dim(), d.num_classes()), (1797, 64, 10));
    assert_eq!(d.class_counts(), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
    assert_eq!(pixel_sum(&d), 561_718);
    assert_eq!(d.labels()[..10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(d.value_range(), Some((0.0, 16.0)));
    // The first row, from the file.
    assert_eq!(d.example(0).0[..8], [0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
}

#[test]
fn digits_csv_errors_give_the_line() {
    let row = |pixels: &str, label: &str| format!("{}{pixels},{label}\n", "0,".repeat(63));
    let good = row("1", "3");
    assert_eq!(parse_digits_csv(good.as_bytes(), "d").unwrap().labels(), [3]);
    for (text, expect) in [
        (
            format!("{good}{}", row("1", "10")),
            "d:2: column 65: label `10` is not a class in 0..10",
        ),
        (
            format!("{good}{}", row("17", "1")),
            "d:2: column 64: pixel 17 outside 0..=16",
        ),
        (
            format!("{good}{}", row("x", "1")),
            "d:2: column 64: `x` is not a number",
        ),
        (
            format!("{good}1,2,3\n"),
            "d:2: 3 fields, expected 65 (64 pixels and a label)",
        ),
        ("\n\n".to_string(), "d: no examples"),
    ] {
        let (_, msg) = err_text(parse_digits_csv(text.as_bytes(), "d"));
        assert_eq!(msg, expect);
    }
    let (_, msg) = err_text(parse_digits_csv(&gz(good.as_bytes())[..20], "d.gz"));
    assert!(msg.starts_with("d.gz: corrupt gzip"), "{msg}");
}

#[test]
fn embedded_breast_cancer_parses_with_the_known_counts() {
    let f = embedded::BREAST_CANCER;
    let d = parse_header_csv(f.bytes, f.name, "breast-cancer").unwrap();
    assert_eq!((d.len(), d.feature_dim()), (569, 30));
    assert_eq!(d.class_counts(), [212, 357]);
    assert_eq!(d.class_names(), ["malignant", "benign"]);
    // Column sums computed in Python: radius 8038.429; area mean 654.889104.
    let col = |c: usize| (0..d.len()).map(|i| d.example(i).0[c] as f64).sum::<f64>();
    assert!((col(0) - 8038.429).abs() < 1e-3, "{}", col(0));
    assert!((col(3) / 569.0 - 654.889104).abs() < 1e-4);
}

#[test]
fn header_csv_errors() {
    let ok = "2,2,a,b\n1.5,2,0\n3,4,1\n";
    let d = parse_header_csv(ok.as_bytes(), "h", "h").unwrap();
    assert_eq!((d.features(), d.labels()), (&[1.5f32, 2.0, 3.0, 4.0][..], &[0, 1][..]));
    for (text, expect) in [
        (
            "3,2,a,b\n1,2,0\n3,4,1\n",
            "h: truncated or padded: the header promises 3 samples but the file has 2",
        ),
        (
            "2,2,a,b\n1,2,0\n3,4,2\n",
            "h:3: column 3: label `2` is not a class in 0..2",
        ),
        (
            "2,2,a,b\n1,2,0\n3,4,0.5\n",
            "h:3: column 3: label `0.5` is not a class in 0..2",
        ),
        ("2,2,a,b\n1,nan,0\n3,4,1\n", "h:2: column 2: `nan` is not finite"),
        (
            "2,2,a,b\n1,2,0\n3,1\n",
            "h:3: 2 fields, expected 3 (2 features and a label)",
        ),
        (
            "two,2,a,b\n",
            "h:1: header `two,2,a,b`: field 1 should be the number of samples",
        ),
        ("", "h: no examples"),
    ] {
        let (_, msg) = err_text(parse_header_csv(text.as_bytes(), "h", "h"));
        assert_eq!(msg, expect);
    }
    let (_, msg) = err_text(parse_header_csv(&[0xff, 0xfe, b'\n'], "h", "h"));
    assert!(msg.contains("not UTF-8"), "{msg}");
}

// ---------------------------------------------------------------- LIBSVM

#[test]
fn heart_scale_parses_with_the_known_counts() {
    let f = embedded::HEART_SCALE;
    let d = parse_libsvm(f.bytes, f.name, "heart-scale", None).unwrap();
    assert_eq!((d.len(), d.feature_dim()), (270, 13));
    // 150 lines labelled -1 (class 0), 120 labelled +1 (class 1); the first line is +1.
    assert_eq!(d.class_counts(), [150, 120]);
    assert_eq!(d.class_names(), ["-1", "+1"]);
    // First line: +1 1:0.708333 2:1 3:1 4:-0.320755 5:-0.105023 6:-1 7:1 8:-0.419847
    //             9:-1 10:-0.225806 12:1 13:-1   (feature 11 absent, so 0)
    let (x, y) = d.example(0);
    assert_eq!(y, 1);
    let want = [
        0.708333, 1.0, 1.0, -0.320755, -0.105023, -1.0, 1.0, -0.419847, -1.0, -0.225806, 0.0, 1.0, -1.0,
    ];
    assert_eq!(x, want.map(|v: f64| v as f32));
    // Sum of all listed values, computed in Python: -666.400860.
    let s: f64 = d.features().iter().map(|&v| v as f64).sum();
    assert!((s + 666.40086).abs() < 1e-3, "{s}");
    assert_eq!(d.value_range(), Some((-1.0, 1.0)));
}

#[test]
fn libsvm_feature_count_labels_comments_and_gzip() {
    let text = "# a comment line\n1 2:0.5\n\n0 1:-1 3:2e-1 # trailing comment\n";
    let d = parse_libsvm(text.as_bytes(), "t", "t", None).unwrap();
    assert_eq!((d.len(), d.feature_dim(), d.labels()), (2, 3, &[1, 0][..]));
    assert_eq!(d.features(), [0.0, 0.5, 0.0, -1.0, 0.0, 0.2]);
    let wide = parse_libsvm(text.as_bytes(), "t", "t", Some(5)).unwrap();
    assert_eq!(wide.feature_dim(), 5);
    assert_eq!(wide.example(1).0, [-1.0, 0.0, 0.2, 0.0, 0.0]);
    assert_eq!(parse_libsvm(&gz(text.as_bytes()), "t.gz", "t", None).unwrap(), d);
    // Multi-class ids, and an example with no features at all.
    let multi = parse_libsvm(b"2 1:1\n0\n5 2:1\n", "m", "m", None).unwrap();
    assert_eq!((multi.num_classes(), multi.labels()), (6, &[2, 0, 5][..]));
    // ±1 labels written as floats map to classes 0 and 1.
    let pm = parse_libsvm(b"-1.0 1:1\n+1 1:2\n", "pm", "pm", None).unwrap();
    assert_eq!((pm.num_classes(), pm.labels()), (2, &[0, 1][..]));
}

#[test]
fn libsvm_malformed_inputs_give_file_line_and_token() {
    for (text, expect) in [
        ("1 1:0.5 x:1\n", "f:1: `x:1`: index `x` is not a non-negative integer"),
        ("1 1:0.5\n-1 2:abc\n", "f:2: `2:abc`: value `abc` is not a number"),
        ("1 1:0.5\n1 30.5\n", "f:2: `30.5`: expected index:value"),
        ("1 0:0.5\n", "f:1: `0:0.5`: index 0; LIBSVM feature indices start at 1"),
        (
            "1 3:1 2:1\n",
            "f:1: `2:1`: index 2 after index 3; indices must be strictly increasing",
        ),
        (
            "1 3:1 3:1\n",
            "f:1: `3:1`: index 3 after index 3; indices must be strictly increasing",
        ),
        ("1 -2:1\n", "f:1: `-2:1`: index `-2` is not a non-negative integer"),
        ("1 1:inf\n", "f:1: `1:inf`: value `inf` is not finite"),
        ("abc 1:1\n", "f:1: label `abc` is not a number"),
        (
            "0.5 1:1\n",
            "f:1: label `0.5` is not an integer class label (kiln reads classification files: ±1, 0/1 or 0..k-1)",
        ),
        (
            "1 1:1\n-2 1:1\n",
            "f:2: label -2: labels must all be ±1 (binary) or all non-negative class ids",
        ),
        (
            "0 1:1\n-1 1:1\n",
            "f:2: label -1: labels must all be ±1 (binary) or all non-negative class ids",
        ),
        ("1 14:1\n", "f:1: `14:1`: index 14 exceeds the given feature count 13"),
        ("# only a comment\n\n", "f: no examples"),
    ] {
        let (_, msg) = err_text(parse_libsvm(text.as_bytes(), "f", "f", Some(13)));
        assert_eq!(msg, expect);
    }
    let (e, msg) = err_text(libsvm::load_libsvm_file(Path::new("/nonexistent/a9a.txt"), "a9a", None));
    assert!(
        matches!(e, DataError::Io { .. }) && msg.contains("/nonexistent/a9a.txt"),
        "{msg}"
    );
}

#[test]
fn libsvm_file_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "tiny.svm", b"+1 1:1 2:2\n-1 2:-3\n");
    let d = libsvm::load_libsvm_file(&p, "tiny", None).unwrap();
    assert_eq!((d.features(), d.labels()), (&[1.0f32, 2.0, 0.0, -3.0][..], &[1, 0][..]));
    let p = write(dir.path(), "bad.svm", b"+1 1:1 2:2\n-1 2-3\n");
    let (_, msg) = err_text(libsvm::load_libsvm_file(&p, "bad", None));
    assert_eq!(msg, format!("{}:2: `2-3`: expected index:value", p.display()));
}
