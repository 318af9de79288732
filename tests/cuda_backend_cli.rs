//! `kiln train --backend cuda|auto` as a user runs it (the real binary, one tiny epoch
//! of logistic regression on the embedded digits set).
//!
//! On a machine without a usable GPU (no driver, no device or no NVRTC: CI and every
//! development machine so far) `--backend cuda` must exit non-zero with the CUDA
//! backend's own message (what is missing, what to do) and no panic, and `--backend
//! auto` must train on the CPU after a one-line note saying why. On a GPU machine both
//! must train on the GPU (metrics.json says `cuda:0`); that branch has not been run yet.

use std::path::PathBuf;
use std::process::{Command, Output};

use kiln_runtime::cuda::probe;

fn out_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kiln-cuda-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn train(backend: &str, out: &PathBuf, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "train",
            "--model",
            "logreg",
            "--optim",
            "sgd",
            "--dataset",
            "digits",
            "--epochs",
            "1",
        ])
        .args(["--batch-size", "64", "--quiet", "--backend", backend, "--out"])
        .arg(out)
        .args(extra)
        .output()
        .expect("running the kiln binary")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The `"backend"` field of the run's metrics.json.
fn metrics_backend(out: &std::path::Path) -> String {
    let json = std::fs::read_to_string(out.join("metrics.json")).expect("metrics.json written");
    let v: serde_json::Value = serde_json::from_str(&json).expect("metrics.json parses");
    v["backend"].as_str().expect("a backend field").to_string()
}

#[test]
fn backend_cuda_trains_on_a_gpu_or_says_what_is_missing() {
    let out = out_dir("cuda");
    let o = train("cuda", &out, &[]);
    let (stdout, stderr) = text(&o);
    assert!(!stderr.contains("panicked"), "kiln panicked:\n{stderr}");
    match probe(0) {
        Ok((device, _)) => {
            assert!(
                o.status.success(),
                "GPU {} present, yet:\n{stdout}\n{stderr}",
                device.name
            );
            assert_eq!(metrics_backend(&out), "cuda:0");
        }
        Err(e) => {
            assert_eq!(o.status.code(), Some(1), "expected exit 1:\n{stdout}\n{stderr}");
            assert!(stderr.starts_with("error: "), "{stderr}");
            assert!(
                stderr.contains(&e.to_string()),
                "the CUDA error `{e}` is not in:\n{stderr}"
            );
            if !kiln_runtime::cuda::driver_present() {
                assert!(stderr.contains("no CUDA driver"), "{stderr}");
                assert!(stderr.contains("--backend cpu"), "{stderr}");
            }
            assert!(
                !out.join("metrics.json").exists(),
                "a run without a backend wrote metrics"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn backend_auto_falls_back_to_the_cpu_with_a_note() {
    let out = out_dir("auto");
    let o = train("auto", &out, &["--no-kernel-cache"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("final test accuracy"), "{stdout}");
    match probe(0) {
        Ok(_) => {
            assert!(stderr.contains("backend auto: using CUDA device 0"), "{stderr}");
            assert_eq!(metrics_backend(&out), "cuda:0");
        }
        Err(e) => {
            let note = format!("backend auto: using the CPU: {}", e.summary());
            assert!(stderr.contains(&note), "expected `{note}` in:\n{stderr}");
            assert_eq!(stderr.lines().filter(|l| l.starts_with("backend auto")).count(), 1);
            assert_eq!(metrics_backend(&out), "cpu");
        }
    }
    let _ = std::fs::remove_dir_all(&out);
}
