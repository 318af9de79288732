//! The CUDA backend through the public API: `compile(graph, &CompileOptions { backend:
//! Backend::Cuda { .. }, .. })` and the `Executable` it returns.
//!
//! Without a CUDA driver (CI and every development machine so far) the tests check
//! that compiling for CUDA returns `RuntimeError::Cuda` of kind `NoDriver` — never a
//! panic — with a message naming libcuda and the CPU fallback, and that the compile
//! cache never hands CPU code to a CUDA request.
//!
//! With a driver, a GPU and NVRTC (`KILN_NVRTC`, the system search or the workspace's
//! `.cache/nvrtc`) the MLP training step (784-256-256-10, cross-entropy, Adam and VSGD)
//! runs for 20 steps on the CPU and on the GPU from the same initial values and must
//! agree: the losses step by step, and every parameter and state tensor at the end.
//! That GPU part has NOT been run yet: no machine this was written on had a GPU. Without
//! one the same harness compares the CPU's fused step with its unfused one, so the
//! comparison itself is exercised everywhere.

#[path = "cuda_common/models.rs"]
#[allow(dead_code)]
mod models;

use std::collections::HashSet;
use std::path::PathBuf;

use kiln_ir::interp::Bindings;
use kiln_ir::{DType, Graph, GraphBuilder, Init, SourceKind, Value};
use kiln_models::optim::Phase;
use kiln_models::{nets, optim};
use kiln_runtime::compile::{compile, Backend, CompileCache, CompileOptions};
use kiln_runtime::cuda::{driver_present, load_nvrtc, nvrtc, probe, CudaError, CudaErrorKind};
use kiln_runtime::error::RuntimeError;

/// w <- w - lr * sum_rows(x * w); loss = sum(x * w).
fn sgd_graph() -> Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 5], DType::F32);
    let w = b.param("w", [5], Init::Uniform { low: -1.0, high: 1.0 });
    let lr = b.scalar("lr", DType::F32);
    let y = &x * &w;
    b.output("loss", &y.sum_all());
    b.update(&w, &(&w - &(&y.sum(&[0], false) * &lr)));
    b.finish().unwrap()
}

fn on(backend: Backend) -> CompileOptions {
    CompileOptions {
        backend,
        rewrite: false,
        ..CompileOptions::default()
    }
}

fn expect_no_driver(e: &RuntimeError) {
    match e {
        RuntimeError::Cuda {
            kind: CudaErrorKind::NoDriver,
            message,
        } => {
            assert!(message.contains("libcuda"), "{message}");
            assert!(message.contains("--backend cpu"), "{message}");
        }
        other => panic!("expected RuntimeError::Cuda {{ kind: NoDriver, .. }}, got {other:?}"),
    }
    assert!(e.is_backend_unavailable());
}

#[test]
fn without_a_driver_compiling_for_cuda_is_a_clear_error() {
    if driver_present() {
        eprintln!("SKIP without_a_driver_compiling_for_cuda_is_a_clear_error: this machine has libcuda");
        return;
    }
    let cache = CompileCache::new();
    let g = sgd_graph();
    // CPU code of the very same graph is in the cache first: a CUDA request must not be
    // served from it (the backend is part of the key).
    let mut cpu = cache.compile(&g, &on(Backend::Cpu)).unwrap();
    assert_eq!(cpu.backend(), Backend::Cpu);
    for ordinal in [0, 3] {
        let e = cache.compile(&g, &on(Backend::Cuda { ordinal })).unwrap_err();
        expect_no_driver(&e);
    }
    let no_cache = CompileOptions {
        kernel_cache: false,
        ..on(Backend::Cuda { ordinal: 0 })
    };
    expect_no_driver(&cache.compile(&g, &no_cache).unwrap_err());
    assert_eq!(
        (cache.compiles(), cache.hits()),
        (1, 0),
        "a failed CUDA compile was cached or hit"
    );
    // The process-wide cache behind `compile` too, with rewriting on.
    let e = compile(
        &g,
        &CompileOptions {
            backend: Backend::Cuda { ordinal: 0 },
            ..CompileOptions::default()
        },
    )
    .unwrap_err();
    expect_no_driver(&e);
    // The CPU executable is unaffected.
    cpu.set_scalar("lr", 0.5).unwrap();
    let mut x = Bindings::new();
    x.insert("x".into(), Value::full(1.0, [3, 5], DType::F32));
    let loss = cpu.run(&x).unwrap()["loss"].data[0];
    assert!(loss.is_finite());
    // Errors that are not about a missing backend do not invite a fallback.
    let e = RuntimeError::ScalarUnset { name: "lr".into() };
    assert!(!e.is_backend_unavailable());
}

#[test]
fn backends_print_as_the_cli_names_them() {
    assert_eq!(Backend::Cpu.to_string(), "cpu");
    assert_eq!(Backend::Cuda { ordinal: 1 }.to_string(), "cuda:1");
    assert_eq!(Backend::default(), Backend::Cpu);
}

fn workspace_nvrtc() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/nvrtc/nvidia/cuda_nvrtc/lib");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with("libnvrtc.so.") && !n.contains("builtins") && !n.contains("alt")
        })
        .collect();
    libs.sort();
    libs.into_iter().next().and_then(|p| std::fs::canonicalize(p).ok())
}

/// Whether GPU 0 and NVRTC are usable (loading the workspace's NVRTC if that is the
/// only one); prints why not.
fn gpu_ready(test: &str) -> bool {
    if !driver_present() {
        eprintln!("SKIP {test}: no CUDA driver on this machine (libcuda.so.1 not found)");
        return false;
    }
    if let Err(CudaError::NoNvrtc { .. }) = nvrtc() {
        if let Some(lib) = workspace_nvrtc() {
            load_nvrtc(Some(lib)).unwrap_or_else(|e| panic!("the workspace's .cache/nvrtc does not load: {e}"));
        }
    }
    match probe(0) {
        Ok((d, nv)) => {
            eprintln!(
                "{test}: GPU 0 = {} ({}), NVRTC {}",
                d.name,
                d.arch(),
                nv.version_string()
            );
            true
        }
        Err(e) => {
            eprintln!("SKIP {test}: {e}");
            false
        }
    }
}

const BATCH: usize = 33;
const STEPS: u64 = 20;

/// A deterministic batch for `step`: features in [0, 1), labels 0..10.
fn batch(step: u64, features: &[usize]) -> Bindings {
    let mut shape = vec![BATCH];
    shape.extend_from_slice(features);
    let n: usize = shape.iter().product();
    let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ step.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    let x: Vec<f32> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let y: Vec<f64> = (0..BATCH).map(|i| ((i as u64 * 7 + step * 3) % 10) as f64).collect();
    let mut b = Bindings::new();
    b.insert("x".into(), Value::from_f32(shape, &x).unwrap());
    b.insert("y".into(), Value::new([BATCH], DType::I32, y).unwrap());
    b
}

/// f32 results of two devices: `rel` relative to the larger of 1 and the value.
fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * b.abs().max(1.0) || (a.is_nan() && b.is_nan())
}

#[test]
fn mlp_training_on_cuda_matches_the_cpu_for_20_steps() {
    let test = "mlp_training_on_cuda_matches_the_cpu_for_20_steps";
    if gpu_ready(test) {
        let gpu = CompileOptions {
            backend: Backend::Cuda { ordinal: 0 },
            ..CompileOptions::default()
        };
        compare_training(&gpu);
    } else {
        // The same harness, CPU fused+rewritten against CPU unfused, so its logic
        // (graphs, scalars, batches, tolerances) is exercised on every machine.
        eprintln!("{test}: checking the harness with the CPU (unfused, no rewrite) as the subject instead");
        let unfused = CompileOptions {
            fuse: false,
            rewrite: false,
            ..CompileOptions::default()
        };
        compare_training(&unfused);
    }
}

/// Train the MLP for [`STEPS`] steps compiled with the default CPU options and with
/// `subject` (seed 11 on both) and check that they agree.
fn compare_training(subject: &CompileOptions) {
    let on_gpu = matches!(subject.backend, Backend::Cuda { .. });
    let model = nets::by_name("mlp", &[1, 28, 28], 10).unwrap();
    let features = model.example_shape();
    for (opt_name, lr) in [("adam", 1e-3), ("vsgd", 1e-2)] {
        let mut opt = optim::by_name(opt_name).unwrap();
        opt.set("lr", lr).unwrap();
        let mut shape = vec![BATCH];
        shape.extend(features.clone());
        let loss = |b: &GraphBuilder| {
            let x = b.input("x", shape.clone(), DType::F32);
            let y = b.input("y", [BATCH], DType::I32);
            model.forward(b, &x).cross_entropy(&y)
        };
        let g = models::phase_graph(opt.as_ref(), Phase::Step, &loss);
        let scalars: HashSet<String> = g
            .sources_of(SourceKind::Scalar)
            .into_iter()
            .filter_map(|id| g.node(id).op.source_name().map(str::to_string))
            .collect();
        let cpu_opts = CompileOptions {
            seed: 11,
            ..CompileOptions::default()
        };
        let sub_opts = CompileOptions {
            seed: 11,
            ..subject.clone()
        };
        let mut cpu = compile(&g, &cpu_opts).unwrap_or_else(|e| panic!("{opt_name} cpu: {e}"));
        let mut gpu = compile(&g, &sub_opts).unwrap_or_else(|e| panic!("{opt_name} {}: {e}", subject.backend));
        assert_eq!(gpu.backend(), subject.backend);
        if on_gpu {
            assert!(gpu.cuda().is_some() && gpu.compiled().is_none());
            assert_eq!(cpu.launches(), gpu.launches(), "{opt_name}: both lower the same graph");
        }
        // Outputs and intermediates start as NaN before every run: every element must be written.
        gpu.set_poison(true);
        let names = cpu.persistent_names();
        assert_eq!(names, gpu.persistent_names());
        for n in &names {
            // the same seed; f32 on both sides, so the device round trip is exact
            assert_eq!(cpu.get(n).unwrap(), gpu.get(n).unwrap(), "{opt_name}: initial `{n}`");
        }
        for step in 1..=STEPS {
            for (n, v) in opt.scalars(step).unwrap() {
                if scalars.contains(&n) {
                    cpu.set_scalar(&n, v).unwrap();
                    gpu.set_scalar(&n, v).unwrap();
                }
            }
            let inputs = batch(step, &features);
            let want = cpu
                .run(&inputs)
                .unwrap_or_else(|e| panic!("{opt_name} step {step} cpu: {e}"));
            let got = gpu
                .run(&inputs)
                .unwrap_or_else(|e| panic!("{opt_name} step {step} subject: {e}"));
            assert_eq!(want.len(), got.len());
            for (name, w) in &want {
                let v = &got[name];
                assert_eq!(v.shape, w.shape, "{opt_name} step {step}: `{name}`");
                for (i, (&a, &b)) in v.data.iter().zip(&w.data).enumerate() {
                    assert!(
                        close(a, b, 1e-3),
                        "{opt_name} step {step}: {name}[{i}] subject {a}, cpu {b}"
                    );
                }
            }
        }
        // Parameters and state after 20 steps. Summation order differs between the
        // devices, so a gradient element within rounding of zero may change sign, and a
        // normalised update (Adam, VSGD) then moves it by up to 2*lr per step: allow that
        // for a few elements, and require almost all to agree to 1e-3 of the tensor's scale.
        let bound = 2.0 * lr * STEPS as f64 + 1e-6;
        let (mut worst, mut worst_name, mut total_off) = (0.0f64, String::new(), 0usize);
        for n in &names {
            let (a, b) = (gpu.get(n).unwrap(), cpu.get(n).unwrap());
            assert_eq!(a.shape, b.shape);
            let scale = b.data.iter().fold(0.0f64, |m, x| m.max(x.abs())).max(1e-12);
            let mut off = 0usize;
            for (i, (&x, &y)) in a.data.iter().zip(&b.data).enumerate() {
                assert!(x.is_finite(), "{opt_name}: `{n}`[{i}] = {x} in the subject");
                let d = (x - y).abs();
                assert!(
                    d <= bound.max(1e-3 * scale),
                    "{opt_name}: `{n}`[{i}] subject {x}, cpu {y}"
                );
                if d > 1e-3 * scale + 1e-7 {
                    off += 1;
                }
                if d / scale > worst {
                    (worst, worst_name) = (d / scale, n.clone());
                }
            }
            total_off += off;
            assert!(
                off * 1000 <= a.data.len(),
                "{opt_name}: `{n}`: {off} of {} elements differ by more than 1e-3 of its scale {scale}",
                a.data.len()
            );
        }
        eprintln!(
            "{opt_name} on {}: {STEPS} steps agree; largest difference {worst:.2e} of `{worst_name}`'s scale, \
             {total_off} elements beyond 1e-3",
            subject.backend
        );
        // Training moved the parameters (the comparison above is not of two idle steps).
        let first = &names[0];
        let fresh = compile(&g, &sub_opts).unwrap();
        assert_ne!(
            fresh.get(first).unwrap(),
            gpu.get(first).unwrap(),
            "{opt_name}: `{first}` never changed"
        );
        // set/get round trip (through the device on a GPU); a checkpoint holds every name.
        let v = cpu.get(first).unwrap();
        gpu.set(first, &v).unwrap();
        assert_eq!(gpu.get(first).unwrap(), v);
        assert_eq!(gpu.persistent_values().unwrap().len(), names.len());
    }
}

#[test]
fn executables_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<kiln_runtime::executable::Executable>();
}

#[test]
fn missing_pieces_invite_a_fallback_and_nothing_else_does() {
    let oom = CudaError::OutOfMemory {
        bytes: 1 << 30,
        what: "Param(\"w\")".into(),
        free: 0,
        total: 1 << 30,
    };
    let cases = [
        (CudaError::NoDriver, CudaErrorKind::NoDriver, true),
        (CudaError::NoDevice, CudaErrorKind::NoDevice, true),
        (
            CudaError::BadOrdinal { ordinal: 2, count: 1 },
            CudaErrorKind::NoDevice,
            true,
        ),
        (
            CudaError::NoNvrtc {
                searched: "libnvrtc.so, libnvrtc.so.12".into(),
            },
            CudaErrorKind::NoNvrtc,
            true,
        ),
        (compile_error(), CudaErrorKind::Compile, false),
        (oom, CudaErrorKind::OutOfMemory, false),
        (CudaError::Exec("bad launch".into()), CudaErrorKind::Other, false),
    ];
    for (e, kind, unavailable) in cases {
        assert_eq!(e.kind(), kind, "{e}");
        let shown = e.to_string();
        let r = RuntimeError::from(e);
        assert_eq!(r.is_backend_unavailable(), unavailable, "{r}");
        assert_eq!(
            r.to_string()
                .strip_prefix("CUDA backend: ")
                .map(|m| m.starts_with(&shown)),
            Some(true),
            "{r}"
        );
    }
    let e = RuntimeError::from(CudaError::NoNvrtc {
        searched: "libnvrtc.so".into(),
    })
    .to_string();
    assert!(e.contains("KILN_NVRTC") && e.contains("--backend cpu"), "{e}");
    let e = RuntimeError::from(compile_error()).to_string();
    assert!(
        e.contains("k3_softmax") && e.contains("is undefined"),
        "the log and the kernel are shown: {e}"
    );
    assert_eq!(CudaError::NoDriver.summary(), "no CUDA driver (libcuda.so.1 not found)");
}

fn compile_error() -> CudaError {
    CudaError::Compile {
        program: "kiln_step (kernel k3_softmax)".into(),
        arch: "sm_90".into(),
        log: "kiln_step.cu(12): error: identifier \"x\" is undefined".into(),
    }
}
