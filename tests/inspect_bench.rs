//! `kiln inspect` and `kiln bench`: the documented output formats (fusion-plan JSON,
//! rewrite-statistics JSON, bench-results JSON from tiny runs of every suite), every built-in model
//! through every inspect stage, the minimal byte counts the bandwidth figures use, and
//! the mixed-size layout of the optimizer suite.

use std::process::Command;

use kiln::inspect::{self, fusion::FusionReport, InspectOptions, STAGES};
use kiln_benches::{minimal_bytes, mixed_sizes, optim_graph, triad_graph};
use kiln_models::nets::MODELS;
use serde_json::Value as Json;

fn kiln(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args(args)
        .output()
        .expect("running kiln");
    assert!(
        out.status.success(),
        "kiln {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("kiln-inspect-test-{}-{name}", std::process::id()))
}

fn num(v: &Json, key: &str) -> f64 {
    v.get(key)
        .and_then(Json::as_f64)
        .unwrap_or_else(|| panic!("missing number `{key}` in {v}"))
}

#[test]
fn fusion_json_has_the_documented_keys_and_consistent_totals() {
    let fused: Json = serde_json::from_str(&kiln(&[
        "inspect", "--model", "logreg", "--optim", "vsgd", "--batch", "8", "--json",
    ]))
    .unwrap();
    let kernels = fused["kernels"].as_array().expect("kernels array");
    assert!(!kernels.is_empty());
    let mut bytes = 0.0;
    for k in kernels {
        assert!(k["name"].as_str().is_some_and(|s| !s.is_empty()), "{k}");
        for key in ["nodes", "inputs", "outputs"] {
            assert!(k[key].is_array(), "kernel lacks `{key}`: {k}");
        }
        assert!(
            !k["outputs"].as_array().unwrap().is_empty(),
            "a kernel writes something: {k}"
        );
        bytes += num(k, "bytes");
        num(k, "flops");
    }
    assert_eq!(num(&fused, "launches_per_step") as usize, kernels.len());
    assert_eq!(num(&fused, "bytes_per_step"), bytes);
    assert!(num(&fused, "peak_bytes") > 0.0);
    for n in fused["not_fused"].as_array().expect("not_fused array") {
        assert_eq!(n["between"].as_array().map(Vec::len), Some(2), "{n}");
        assert!(n["reason"].as_str().is_some_and(|s| !s.is_empty()), "{n}");
    }
    // The matmul of logistic regression is 2*8*784*10 flops; the plan counts at least that.
    let flops: f64 = kernels.iter().map(|k| num(k, "flops")).sum();
    assert!(flops >= (2 * 8 * 784 * 10) as f64, "flops {flops}");

    let unfused: Json = serde_json::from_str(&kiln(&[
        "inspect",
        "--model",
        "logreg",
        "--optim",
        "vsgd",
        "--batch",
        "8",
        "--json",
        "--no-fuse",
    ]))
    .unwrap();
    assert!(
        num(&unfused, "launches_per_step") > num(&fused, "launches_per_step"),
        "unfused must launch more kernels"
    );
    assert!(num(&unfused, "bytes_per_step") > num(&fused, "bytes_per_step"));
}

#[test]
fn rewrite_json_has_the_documented_keys() {
    let v: Json = serde_json::from_str(&kiln(&[
        "inspect", "--model", "mlp", "--optim", "adam", "--batch", "4", "--stage", "rewrite", "--json",
    ]))
    .unwrap();
    assert!(num(&v, "ops_before") > 0.0);
    assert!(num(&v, "ops_after") > 0.0);
    assert!(num(&v, "ops_after") <= num(&v, "ops_before"));
    assert!(num(&v, "time_ms") >= 0.0);
    let phases = v["phases"].as_array().expect("phases");
    assert!(!phases.is_empty());
    for p in phases {
        assert!(p["name"].is_string() && p["stop_reason"].is_string(), "{p}");
        num(p, "iterations");
        num(p, "nodes");
    }
    for r in v["top_rules"].as_array().expect("top_rules") {
        assert!(r["rule"].is_string(), "{r}");
        assert!(num(r, "applications") >= 1.0);
    }
}

#[test]
fn every_model_goes_through_every_stage() {
    for model in MODELS {
        let p = inspect::build(&InspectOptions {
            model: model.to_string(),
            optim: "sgd".into(),
            batch: 4,
            ..Default::default()
        })
        .unwrap_or_else(|e| panic!("{model}: {e:#}"));
        for stage in STAGES.iter().filter(|s| **s != "ptx") {
            let text = inspect::stage_text(&p, stage).unwrap_or_else(|e| panic!("{model} {stage}: {e:#}"));
            assert!(!text.trim().is_empty(), "{model}: stage {stage} printed nothing");
        }
        let report = FusionReport::new(&p.rewritten, &p.program);
        assert_eq!(report.launches_per_step, p.program.kernels.len());
        // Every parameter and its update show up in the plan.
        let written: Vec<&String> = report.kernels.iter().flat_map(|k| &k.outputs).collect();
        assert!(
            written.iter().any(|o| o.starts_with("param:")),
            "{model}: no kernel writes a parameter"
        );
    }
    assert!(inspect::stage_text(
        &inspect::build(&InspectOptions {
            model: "logreg".into(),
            batch: 2,
            ..Default::default()
        })
        .unwrap(),
        "nonsense"
    )
    .is_err());
}

#[test]
fn dump_dir_and_svg_write_every_stage() {
    let dir = tmp("dump");
    let svg = tmp("plan.svg");
    kiln(&[
        "inspect",
        "--model",
        "logreg",
        "--optim",
        "adam",
        "--batch",
        "2",
        "--stage",
        "graph",
        "--dump-dir",
        dir.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    for f in [
        "1_graph.ir",
        "2_grad.ir",
        "3_optim.ir",
        "4_rewrite.ir",
        "5_fusion.txt",
        "6_kernels.ir",
        "7_kernels.clif",
        "8_kernels.cu",
        "fusion.json",
        "rewrite.json",
        "fusion.dot",
    ] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(!text.is_empty(), "{f} is empty");
    }
    // PTX is either there or explained.
    assert!(dir.join("9_kernels.ptx").exists() || dir.join("9_kernels.ptx.unavailable.txt").exists());
    let json: Json = serde_json::from_str(&std::fs::read_to_string(dir.join("fusion.json")).unwrap()).unwrap();
    assert!(json["kernels"].is_array());
    let picture = std::fs::read_to_string(&svg).unwrap();
    assert!(picture.contains("<svg") && picture.contains("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&svg);
}

#[test]
fn minimal_bytes_match_the_documented_counts() {
    let vsgd = kiln_models::optim::by_name("vsgd").unwrap();
    // VSGD reads θ, g, μ, B_g, B_h and writes θ, μ, B_g, B_h: 36 bytes per element.
    assert_eq!(minimal_bytes(&optim_graph(vsgd.as_ref(), &[17]).unwrap()), 36 * 17);
    assert_eq!(minimal_bytes(&optim_graph(vsgd.as_ref(), &[3, 783]).unwrap()), 36 * 786);
    let adam = kiln_models::optim::by_name("adam").unwrap();
    // Adam reads θ, g, m, v and writes θ, m, v: 28 bytes per element.
    assert_eq!(minimal_bytes(&optim_graph(adam.as_ref(), &[4097]).unwrap()), 28 * 4097);
    // The triad reads a, b and writes a.
    assert_eq!(minimal_bytes(&triad_graph(1000).unwrap()), 12 * 1000);
}

#[test]
fn mixed_sizes_cover_the_total_exactly() {
    for total in [200, 201, 4097, 1 << 20] {
        let s = mixed_sizes(total, 200).unwrap();
        assert_eq!(s.len(), 200);
        assert_eq!(s.iter().sum::<usize>(), total);
        assert!(s.iter().all(|&n| n >= 1));
    }
    let big = mixed_sizes(1 << 24, 200).unwrap();
    assert!(
        big.iter().max().unwrap() / big.iter().min().unwrap() >= 10,
        "sizes should vary"
    );
    assert!(mixed_sizes(100, 200).is_err());
}

#[test]
fn bench_json_has_the_documented_keys() {
    let path = tmp("bench.json");
    kiln(&[
        "bench",
        "--suite",
        "all",
        "--optim",
        "sgd,adam",
        "--model",
        "logreg",
        "--size",
        "1024",
        "--batch",
        "4",
        "--xent-rows",
        "8",
        "--case",
        "chain20,xent",
        "--reps",
        "2",
        "--json",
        path.to_str().unwrap(),
    ]);
    let v: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(num(&v, "copy_gbps") > 0.0);
    assert!(v["machine"].is_object());
    let results = v["results"].as_array().expect("results");
    // 2 optimizers x (flat, mixed) + 1 model x 2 optimizers + 2 fusion cases.
    assert_eq!(results.len(), 8);
    for r in results {
        for key in ["suite", "name"] {
            assert!(r[key].is_string(), "{key} in {r}");
        }
        for key in ["fused_ms", "unfused_ms", "bytes_per_step", "gbps", "compile_ms"] {
            assert!(num(r, key) > 0.0, "{key} in {r}");
        }
        assert!(num(r, "launches_fused") >= 1.0);
        assert!(num(r, "launches_unfused") >= num(r, "launches_fused"), "{r}");
        assert!(num(r, "fused_min_ms") <= num(r, "fused_ms") && num(r, "fused_ms") <= num(r, "fused_max_ms"));
    }
    let suites: Vec<&str> = results.iter().filter_map(|r| r["suite"].as_str()).collect();
    assert!(suites.contains(&"optim") && suites.contains(&"step") && suites.contains(&"fusion"));
    let step = results.iter().find(|r| r["suite"] == "step").unwrap();
    assert!(num(step, "gflops") > 0.0 && num(step, "fused_norewrite_ms") > 0.0);
}

#[test]
fn fusion_suite_reports_every_case_at_odd_sizes() {
    let path = tmp("fusion.json");
    let out = kiln(&[
        "bench",
        "--suite",
        "fusion",
        "--size",
        "4097",
        "--xent-rows",
        "17",
        "--batch",
        "3",
        "--reps",
        "3",
        "--json",
        path.to_str().unwrap(),
    ]);
    let v: Json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&path);
    assert!(num(&v, "copy_gbps") > 0.0);
    let results = v["results"].as_array().expect("results");
    let names: Vec<&str> = results.iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(
        names,
        ["chain20/4097", "xent/17x1000", "xent-grad/17x1000", "mlp-fwdbwd/b3"],
        "{out}"
    );
    for r in results {
        assert_eq!(r["suite"], "fusion", "{r}");
        for key in [
            "fused_ms",
            "unfused_ms",
            "gbps",
            "ratio_to_copy",
            "speedup",
            "jit_ms_per_kernel_fused",
            "jit_ms_per_kernel_max_fused",
            "jit_ms_per_kernel_unfused",
        ] {
            assert!(num(r, key) > 0.0, "{key} in {r}");
        }
        assert!(num(r, "jit_ms_per_kernel_max_fused") >= num(r, "jit_ms_per_kernel_fused"));
        assert!(num(r, "functions_fused") >= num(r, "launches_fused").min(1.0));
        assert!(num(r, "launches_unfused") > num(r, "launches_fused"), "{r}");
        assert!(out.contains(r["name"].as_str().unwrap()), "table lacks {r}");
    }
    let by = |n: &str| results.iter().find(|r| r["name"] == n).unwrap();
    // The chain reads a and b and writes a (12 B/element), fused into one kernel; unfused
    // every one of its 20 ops is a kernel.
    let chain = by("chain20/4097");
    assert_eq!(num(chain, "bytes_per_step") as usize, 12 * 4097);
    assert_eq!(num(chain, "launches_fused") as usize, 1);
    assert_eq!(num(chain, "ops") as usize, 22, "a, b and 20 ops: {chain}");
    assert_eq!(
        num(chain, "ops_rewritten") as usize,
        22,
        "the rewriter keeps all 20 ops: {chain}"
    );
    assert!(num(chain, "launches_unfused") >= 20.0, "{chain}");
    // The logits are read once (plus the labels); with the gradient also written once.
    assert_eq!(num(by("xent/17x1000"), "bytes_per_step") as usize, 4 * (17 * 1000 + 17));
    assert_eq!(
        num(by("xent-grad/17x1000"), "bytes_per_step") as usize,
        4 * (2 * 17 * 1000 + 17)
    );
    // MLP forward+backward: params read, every gradient written, the batch and labels read.
    let params = 784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10;
    assert_eq!(
        num(by("mlp-fwdbwd/b3"), "bytes_per_step") as usize,
        4 * (2 * params + 3 * 784 + 3)
    );
}

#[test]
fn bench_rejects_an_unknown_fusion_case() {
    let out = Command::new(env!("CARGO_BIN_EXE_kiln"))
        .args([
            "bench", "--suite", "fusion", "--case", "nonsense", "--size", "64", "--reps", "1",
        ])
        .output()
        .expect("running kiln");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown fusion case `nonsense`") && err.contains("chain20"),
        "{err}"
    );
}
