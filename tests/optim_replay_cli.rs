//! `kiln optim replay` as a user runs it: the built binary on golden traces written to
//! files (vsgd.md §6.1, ivon_poco.md §6.1 case A and §6.2), with the compiled CPU
//! pipeline fused (the default) and unfused, and the reference interpreter backend;
//! and bad traces / a bad `--set` give one clear error and a failing exit status.

#![allow(clippy::excessive_precision)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;

/// Write `text` to a fresh file under the temp dir.
fn trace_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-optim-replay-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Run `kiln optim replay --trace <file> <extra>`; (success, stdout, stderr).
fn kiln_replay(file: &PathBuf, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(["optim", "replay", "--trace"])
        .arg(file)
        .args(extra)
        .output()
        .expect("running the kiln binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parameter `p` after step `t` (0-based) from the CLI's JSON output.
fn param(stdout: &str, t: usize, p: &str) -> Vec<f64> {
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    v["steps"][t][p]
        .as_array()
        .unwrap_or_else(|| panic!("no steps[{t}].{p} in {stdout}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[track_caller]
fn close(what: &str, got: &[f64], want: &[f64], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs().max(0.1),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

const BACKENDS: [(&[&str], f64); 3] = [(&[], 1e-6), (&["--no-fuse"], 1e-6), (&["--backend", "reference"], 1e-8)];

#[test]
fn vsgd_golden_through_the_cli() {
    let file = trace_file(
        "vsgd.json",
        &json!({
            "optimizer": "vsgd",
            "hyper": {},
            "params": {"w": {"shape": [3], "data": [1.0, -0.5, 0.25]}},
            "grads": [{"w": [0.5, -1.0, 0.01]}, {"w": [0.4, 0.5, -0.02]}, {"w": [-0.1, -0.8, 0.03]}],
        })
        .to_string(),
    );
    let theta = [
        [0.924273989, -0.408174280, 0.247681699],
        [0.862145510, -0.341320916, 0.306635251],
        [0.800642645, -0.272617890, 0.248786647],
    ];
    for (args, rel) in BACKENDS {
        let (ok, out, err) = kiln_replay(&file, args);
        assert!(ok, "{args:?}: {err}");
        for (t, want) in theta.iter().enumerate() {
            close(
                &format!("vsgd {args:?} step {}", t + 1),
                &param(&out, t, "w"),
                want,
                rel,
            );
        }
    }
    // `--set` overrides the trace: the weight-decay table of §6.2.
    let (ok, out, err) = kiln_replay(&file, &["--set", "weight_decay=0.1"]);
    assert!(ok, "{err}");
    close(
        "vsgd wd",
        &param(&out, 2, "w"),
        &[0.773069878, -0.260263256, 0.240817996],
        1e-6,
    );
}

#[test]
fn ivon_and_svrg_goldens_through_the_cli() {
    // IVON case A with injected z; the gradients are the toy loss's at the sampled
    // weights θ_t of the note's table (a = [1, 2, 0.5], c = [0.5, -1, 2]).
    let a = [1.0, 2.0, 0.5];
    let c = [0.5, -1.0, 2.0];
    let g = |th: [f64; 3]| -> Vec<f64> { (0..3).map(|i| a[i] * (th[i] - c[i])).collect() };
    // θ_3 = m_2 + σ_3 z_3 with σ_3 = 1/sqrt(ess (h_2 + δ)).
    let m2 = [0.17236829185614516, -0.48423170326973797, 0.4600718207901785];
    let h2 = [0.9999743500454128, 0.99995840478550535, 0.99996830561991634];
    let z3 = [1.1, 0.2, -0.7];
    let th3: Vec<f64> = (0..3)
        .map(|i| m2[i] + z3[i] / (100.0f64 * (h2[i] + 1e-4)).sqrt())
        .collect();
    let ivon = trace_file(
        "ivon.json",
        &json!({
            "optimizer": "ivon",
            "hyper": {"lr": 0.1, "ess": 100.0},
            "params": {"w": {"shape": [3], "data": [0.1, -0.2, 0.3]}},
            "grads": [
                {"w": g([0.149997500187, -0.299995000375, 0.449992500562])},
                {"w": g([0.105001299844, -0.260018000425, 0.257505584213])},
                {"w": g([th3[0], th3[1], th3[2]])},
            ],
            "noise": [{"w": [0.5, -1.0, 1.5]}, {"w": [-0.3, 0.8, -1.2]}, {"w": z3}],
        })
        .to_string(),
    );
    for (args, _) in BACKENDS {
        let (ok, out, err) = kiln_replay(&ivon, args);
        assert!(ok, "{args:?}: {err}");
        let m3 = [0.20397866021181169, -0.61476626375689236, 0.54186817702816892];
        // The trace's θ_1, θ_2 are rounded to 12 digits: 1e-6 covers that and f32.
        close(&format!("ivon {args:?}"), &param(&out, 2, "w"), &m3, 1e-6);
    }

    // SVRG α = 1 (§6.2): refreshes before steps 0 and 2; gradients at θ and at θ̃.
    let sa = [[1.0, 2.0, 0.5], [0.5, 1.0, 2.0], [2.0, 0.5, 1.0], [1.0, 1.0, 1.0]];
    let sc = [[0.5, -1.0, 2.0], [-1.0, 0.0, 1.0], [0.0, 1.0, -1.0], [1.0, 0.5, 0.0]];
    let gj = |th: &[f64], j: usize| -> Vec<f64> { (0..3).map(|i| sa[j][i] * (th[i] - sc[j][i])).collect() };
    let theta0 = [0.1, -0.2, 0.3];
    let theta2 = [0.1495, -0.208, 0.36175];
    let theta3 = [0.1658625, -0.2112, 0.38035625];
    let theta1 = [0.1275, -0.205, 0.3325];
    let refresh = |snap: &[f64]| -> Vec<serde_json::Value> {
        (0..4)
            .map(|j| json!({"weight": 0.25, "grads": {"w": gj(snap, j)}}))
            .collect()
    };
    let svrg = trace_file(
        "svrg.json",
        &json!({
            "optimizer": "svrg",
            "hyper": {"lr": 0.2, "alpha": 1.0},
            "params": {"w": {"shape": [3], "data": theta0}},
            "refresh": [
                {"before_step": 0, "batches": refresh(&theta0)},
                {"before_step": 2, "batches": refresh(&theta2)},
            ],
            "grads": [
                {"w": gj(&theta0, 2), "w@snapshot": gj(&theta0, 2)},
                {"w": gj(&theta1, 0), "w@snapshot": gj(&theta0, 0)},
                {"w": gj(&theta2, 3), "w@snapshot": gj(&theta2, 3)},
                {"w": gj(&theta3, 1), "w@snapshot": gj(&theta2, 1)},
            ],
        })
        .to_string(),
    );
    for (args, rel) in BACKENDS {
        let (ok, out, err) = kiln_replay(&svrg, args);
        assert!(ok, "{args:?}: {err}");
        close(
            &format!("svrg {args:?}"),
            &param(&out, 3, "w"),
            &[0.18058875, -0.21376, 0.39152],
            rel,
        );
    }
}

#[test]
fn bad_traces_fail_with_one_clear_message() {
    let good = json!({
        "optimizer": "adam",
        "hyper": {"lr": 0.1},
        "params": {"w": {"shape": [2, 2], "data": [1, 2, 3, 4]}},
        "grads": [{"w": [0.1, 0.2, 0.3, 0.4]}],
    });
    let cases = [
        (
            "unknown-optimizer.json",
            json!({"optimizer": "adagrad"}),
            &[][..],
            "adagrad",
        ),
        (
            "unknown-hyper.json",
            json!({"hyper": {"lr": 0.1, "kg": 3}}),
            &[][..],
            "kg",
        ),
        (
            "short-grad.json",
            json!({"grads": [{"w": [0.1, 0.2, 0.3]}]}),
            &[][..],
            "3 numbers",
        ),
        ("good.json", json!({}), &["--set", "beta1=2"][..], "beta1"),
    ];
    for (name, patch, extra, needle) in cases {
        let mut t = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            t[k] = v.clone();
        }
        let file = trace_file(name, &t.to_string());
        let (ok, out, err) = kiln_replay(&file, extra);
        assert!(!ok, "{name}: succeeded with {out}");
        assert!(out.is_empty(), "{name}: printed {out}");
        assert!(err.contains(needle), "{name}: {err}");
        let line = err.lines().next().unwrap_or("");
        let body = line.trim_start_matches("error: ");
        // No part of the message is repeated (a `{:#}` chain printing a source twice).
        let parts: Vec<&str> = body.split(": ").filter(|p| p.len() > 20).collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(!parts[i + 1..].contains(p), "{name}: repeated message: {err}");
        }
    }
    let (ok, _, err) = kiln_replay(
        &trace_file("nan.json", "{\"optimizer\": \"sgd\", \"grads\": [NaN]}"),
        &[],
    );
    assert!(!ok && err.contains("NaN") && err.contains("finite"), "{err}");
}
