//! `kiln experiment optimizers --quick` end to end (the pipeline, not the science): the
//! run writes results.json, summary.md and three PNG plots; the JSON has every run of
//! the sweep with finite, above-chance accuracies, a learning-rate selection per
//! optimizer, VSGD's β₁ histograms and the conv-net follow-up; a second run into the
//! same folder reuses the finished runs.

use std::path::PathBuf;

use kiln::experiment::{self, ExperimentOptions};
use serde_json::Value;

fn finite(v: &Value, what: &str) -> f64 {
    let x = v.as_f64().unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite(), "{what} = {x}");
    x
}

#[test]
fn quick_run_writes_results_and_plots() {
    let out = std::env::temp_dir().join(format!("kiln-experiment-optimizers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let opts = ExperimentOptions {
        out_dir: out.clone(),
        quick: true,
        seeds: None,
        data_dir: None,
    };
    let files = experiment::run("optimizers", &opts).expect("the quick run finishes");
    for name in ["results.json", "summary.md", "curves.png", "sweep.png", "beta1.png"] {
        let path: PathBuf = out.join(name);
        assert!(
            files.contains(&path),
            "{name} is not among the files reported: {files:?}"
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name} is a PNG");
            assert!(bytes.len() > 5000, "{name} is a drawn plot, not an empty image");
        }
    }

    let json: Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).expect("valid JSON");
    assert_eq!(json["experiment"], "optimizers");
    assert_eq!(json["complete"], true);
    assert_eq!(json["quick"], true);
    assert_eq!(
        json["data"]["dataset"], "fashion-mnist",
        "quick mode uses the embedded subset"
    );
    let epochs = json["config"]["epochs"].as_u64().unwrap() as usize;
    let arms = json["config"]["arms"].as_array().unwrap();
    let expected_runs: usize = arms.iter().map(|a| a["lrs"].as_array().unwrap().len()).sum();
    let labels: Vec<&str> = arms.iter().map(|a| a["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["vsgd", "adam", "adamw", "sgd-momentum"]);

    let runs = json["runs"].as_array().unwrap();
    assert_eq!(runs.len(), expected_runs, "one run per (optimizer, lr, seed)");
    for r in runs {
        let name = format!("{} lr {}", r["arm"], r["lr"]);
        assert!(r["diverged"].is_null(), "{name} diverged");
        let acc = finite(&r["final_test_accuracy"], &name);
        assert!(acc > 0.2, "{name}: final test accuracy {acc} is not above chance (0.1)");
        finite(&r["final_val_accuracy"], &name);
        finite(&r["final_train_eval"]["loss"], &name);
        let ep = r["epochs"].as_array().unwrap();
        assert_eq!(ep.len(), epochs, "{name}");
        for e in ep {
            for key in [
                "lr",
                "train_loss",
                "val_loss",
                "val_accuracy",
                "test_loss",
                "test_accuracy",
                "seconds",
            ] {
                finite(&e[key], &format!("{name} {key}"));
            }
        }
        // Step decay: the last epoch runs at a smaller rate than the first.
        assert!(
            finite(&ep[epochs - 1]["lr"], "lr") < finite(&ep[0]["lr"], "lr"),
            "{name}: no decay"
        );
        let beta1 = r["beta1"].as_array().unwrap();
        if r["optimizer"] == "vsgd" {
            assert_eq!(beta1.len(), epochs + 1, "{name}: after step 1 and after every epoch");
            for b in beta1 {
                let n = b["elements"].as_u64().unwrap();
                assert!(n > 200_000, "{name}: beta1 over all MLP elements, got {n}");
                let hist: u64 = b["log10_one_minus_beta1_histogram"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c.as_u64().unwrap())
                    .sum();
                assert_eq!(hist, n, "{name}: the histogram counts every element");
                for q in ["p05", "p50", "p95"] {
                    let v = finite(&b["quantiles"][q], q);
                    assert!((0.0..=1.0).contains(&v), "{name}: beta1 {q} = {v}");
                }
            }
        } else {
            assert!(beta1.is_empty(), "{name}: beta1 is VSGD's");
        }
    }

    let summary = json["summary"].as_array().unwrap();
    assert_eq!(summary.len(), arms.len());
    for (s, a) in summary.iter().zip(arms) {
        let lr = finite(&s["selected_lr"], "selected lr");
        assert!(a["lrs"].as_array().unwrap().iter().any(|x| x.as_f64() == Some(lr)));
    }

    let conv = json["conv"]["runs"].as_array().unwrap();
    assert_eq!(conv.len(), arms.len(), "conv errors: {}", json["conv"]["errors"]);
    for r in conv {
        assert_eq!(r["model"], "convnet");
        finite(&r["final_test_accuracy"], "conv test accuracy");
        finite(&r["epochs"][0]["train_loss"], "conv train loss");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("(selected)") && md.contains("β₁"), "{md}");
    assert_eq!(json["reused_runs"], 0);

    // Run again into the same folder: every finished run is reused, not retrained.
    experiment::run("optimizers", &opts).expect("the resumed run finishes");
    let again: Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(again["reused_runs"].as_u64(), Some((runs.len() + conv.len()) as u64));
    assert_eq!(again["runs"], json["runs"], "reused runs are kept as they were");
    assert_eq!(again["summary"], json["summary"]);
    let _ = std::fs::remove_dir_all(&out);
}
