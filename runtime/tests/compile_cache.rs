//! The compile cache and run-time behaviour of graph executables: compiling the same
//! graph twice compiles once; changing a runtime scalar (the learning rate) never
//! recompiles; every code-generation option is part of the key; executables from one
//! cache entry own separate parameters; wrong input names, shapes and dtypes give
//! clear errors; parameters and state can be read and written by name.

mod compile_util;

use compile_util::*;
use kiln_compiler::codegen::clif::ClifOptions;
use kiln_ir::{DType, GraphBuilder, Init, Value};
use kiln_runtime::compile::{CompileCache, CompileOptions};
use kiln_runtime::error::RuntimeError;

/// w <- w - lr * (x*w) ; loss = sum(x*w)
fn sgd_graph() -> kiln_ir::Graph {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 5], DType::F32);
    let w = b.param("w", [5], Init::Uniform { low: -1.0, high: 1.0 });
    let lr = b.scalar("lr", DType::F32);
    let y = &x * &w;
    b.output("loss", &y.sum_all());
    b.update(&w, &(&w - &(&y.sum(&[0], false) * &lr)));
    b.finish().unwrap()
}

fn opts() -> CompileOptions {
    CompileOptions {
        rewrite: false,
        ..CompileOptions::default()
    }
}

#[test]
fn same_graph_compiles_once_and_scalars_never_recompile() {
    let cache = CompileCache::new();
    let g = sgd_graph();
    let x = random_inputs(&g, 1, 10);
    let mut a = cache.compile(&g, &opts()).unwrap();
    assert_eq!((cache.compiles(), cache.hits()), (1, 0));
    for lr in [0.1, 0.01, 0.5] {
        a.set_scalar("lr", lr).unwrap();
        a.run(&x).unwrap();
    }
    assert_eq!(cache.compiles(), 1, "changing lr recompiled");

    // A structurally equal graph built again hits the cache ...
    let mut b = cache.compile(&sgd_graph(), &opts()).unwrap();
    assert_eq!((cache.compiles(), cache.hits()), (1, 1));
    assert!(std::sync::Arc::ptr_eq(a.compiled().unwrap(), b.compiled().unwrap()));
    // ... but owns its parameters (initialised from the same seed).
    b.set_scalar("lr", 0.1).unwrap();
    let w_before = b.get("w").unwrap();
    assert_ne!(a.get("w").unwrap().data, w_before.data, "a was trained, b is fresh");
    b.run(&x).unwrap();
    assert_ne!(b.get("w").unwrap().data, w_before.data);

    // Every code-generation option is part of the key; the seed is not.
    let variants = [
        CompileOptions { fuse: false, ..opts() },
        CompileOptions {
            rewrite: true,
            ..opts()
        },
        CompileOptions {
            codegen: ClifOptions { simd: false, fma: true },
            ..opts()
        },
        CompileOptions {
            codegen: ClifOptions { simd: true, fma: false },
            ..opts()
        },
    ];
    for (i, o) in variants.iter().enumerate() {
        cache.compile(&g, o).unwrap();
        assert_eq!(cache.compiles(), 2 + i, "{o:?}");
    }
    let seeded = cache.compile(&g, &CompileOptions { seed: 99, ..opts() }).unwrap();
    assert_eq!(cache.compiles(), 5);
    assert_ne!(
        seeded.get("w").unwrap().data,
        w_before.data,
        "the seed changes the initial values"
    );

    // A different constant is a different graph.
    let b2 = GraphBuilder::new();
    let x2 = b2.input("x", [3, 5], DType::F32);
    b2.output("loss", &(&x2 * 2.0).sum_all());
    cache.compile(&b2.finish().unwrap(), &opts()).unwrap();
    assert_eq!(cache.compiles(), 6);
}

#[test]
fn graph_executables_report_wrong_inputs_clearly() {
    let g = sgd_graph();
    let mut exe = CompileCache::new().compile(&g, &opts()).unwrap();
    let good = random_inputs(&g, 2, 10);

    let e = exe.run(&good).unwrap_err();
    assert!(matches!(&e, RuntimeError::ScalarUnset { name } if name == "lr"), "{e}");
    exe.set_scalar("lr", 0.1).unwrap();

    // Right element count, wrong shape: graph executables check the full shape.
    let mut bad = good.clone();
    bad.insert("x".into(), Value::zeros([5, 3], DType::F32));
    let e = exe.run(&bad).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::InputShape { name, .. } if name == "x"),
        "{e}"
    );
    assert!(e.to_string().contains("[3, 5]"), "{e}");

    let mut bad = good.clone();
    bad.insert("x".into(), Value::zeros([3, 5], DType::I32));
    let e = exe.run(&bad).unwrap_err();
    assert!(matches!(&e, RuntimeError::InputDType { .. }), "{e}");

    let mut bad = good.clone();
    bad.insert("lables".into(), Value::zeros([3], DType::I32));
    let e = exe.run(&bad).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::UnknownInput { name, known } if name == "lables" && known.contains("lr")),
        "{e}"
    );

    let e = exe.run(&Default::default()).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::MissingInput { name, .. } if name == "x"),
        "{e}"
    );
    assert!(e.to_string().contains("f32 value of shape [3, 5]"), "{e}");

    // Scalars can be passed with the inputs; a non-scalar value for them is refused.
    let mut with_lr = good.clone();
    with_lr.insert("lr".into(), Value::zeros([2], DType::F32));
    assert!(matches!(exe.run(&with_lr), Err(RuntimeError::InputShape { .. })));
    with_lr.insert("lr".into(), Value::scalar(0.25, DType::F32));
    exe.run(&with_lr).unwrap();
    assert_eq!(exe.scalar("lr"), Some(0.25));
}

#[test]
fn parameters_round_trip_by_name() {
    let g = sgd_graph();
    let mut exe = CompileCache::new().compile(&g, &opts()).unwrap();
    assert_eq!(exe.persistent_names(), vec!["w".to_string()]);
    let init = kiln_ir::init::initial_bindings(&g, opts().seed);
    assert_eq!(
        exe.get("w").unwrap(),
        init["w"],
        "initial values come from kiln_ir::init"
    );
    let w = Value::from_f32([5], &[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
    exe.set("w", &w).unwrap();
    assert_eq!(exe.get("w").unwrap(), w);
    let snapshot = exe.persistent_values().unwrap();
    exe.set_scalar("lr", 0.5).unwrap();
    exe.run(&random_inputs(&g, 3, 10)).unwrap();
    assert_ne!(exe.get("w").unwrap(), w);
    exe.set("w", &snapshot["w"]).unwrap();
    assert_eq!(exe.get("w").unwrap(), w);
    assert!(matches!(exe.get("nope"), Err(RuntimeError::UnknownPersistent { .. })));
}
