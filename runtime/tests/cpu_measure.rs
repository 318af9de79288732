//! Scratch measurements of the CPU backend (ignored by default; numbers, not checks):
//! JIT compile time per generated kernel, and the bandwidth of a fused elementwise
//! update against a triad kernel run in the same process. Run with
//! `cargo test --release -p kiln-runtime --test cpu_measure -- --ignored --nocapture`.

mod cpu_util;

use std::time::{Duration, Instant};

use cpu_util::*;
use kiln_compiler::codegen::clif::ClifOptions;
use kiln_compiler::kernel::{IndexExpr, Inst, Program};
use kiln_ir::{BinaryOp, DType, UnaryOp, Value};
use kiln_runtime::compile::{compile_code, compile_program};

/// An Adam-like in-place update over `n` elements: reads p, g, m, v; writes p, m, v
/// (28 bytes per element), 14 arithmetic ops.
fn adam_program(n: usize) -> Program {
    use BinaryOp::*;
    let bin = |op, a: u32, b: u32| Inst::Binary { op, a: v(a), b: v(b) };
    let c = |x: f64| Inst::Const {
        value: x,
        dtype: DType::F32,
    };
    let insts = vec![
        (v(0), load(0, var(0))),
        (v(1), load(1, var(0))),
        (v(2), load(2, var(0))),
        (v(3), load(3, var(0))),
        (v(4), c(0.9)),
        (v(5), c(0.1)),
        (v(6), bin(Mul, 4, 2)),
        (v(7), bin(Mul, 5, 1)),
        (v(8), bin(Add, 6, 7)), // m'
        (v(9), c(0.999)),
        (v(10), c(0.001)),
        (v(11), bin(Mul, 1, 1)),
        (v(12), bin(Mul, 10, 11)),
        (v(13), bin(Mul, 9, 3)),
        (v(14), bin(Add, 13, 12)), // v'
        (
            v(15),
            Inst::Unary {
                op: UnaryOp::Sqrt,
                x: v(14),
            },
        ),
        (v(16), c(1e-8)),
        (v(17), bin(Max, 15, 16)),
        (v(18), bin(Div, 8, 17)),
        (v(19), Inst::Scalar { slot: 0 }),
        (v(20), bin(Mul, 18, 19)),
        (v(21), bin(Sub, 0, 20)), // p'
    ];
    let k = elementwise_kernel("adam", &[n], insts, vec![(0, v(21)), (2, v(8)), (3, v(14))]);
    let param = |name: &str| buffer(n, DType::F32, kiln_compiler::kernel::BufferRole::Param(name.into()));
    program(
        vec![param("p"), param("g"), param("m"), param("v")],
        vec![("lr", DType::F32)],
        vec![k],
    )
}

/// a = b + s * c (12 bytes per element).
fn triad_program(n: usize) -> Program {
    let k = elementwise_kernel(
        "triad",
        &[n],
        vec![
            (v(0), load(1, var(0))),
            (v(1), load(2, var(0))),
            (v(2), Inst::Scalar { slot: 0 }),
            (
                v(3),
                Inst::Binary {
                    op: BinaryOp::Mul,
                    a: v(2),
                    b: v(1),
                },
            ),
            (
                v(4),
                Inst::Binary {
                    op: BinaryOp::Add,
                    a: v(0),
                    b: v(3),
                },
            ),
        ],
        vec![(0, v(4))],
    );
    let param = |name: &str| buffer(n, DType::F32, kiln_compiler::kernel::BufferRole::Param(name.into()));
    program(
        vec![param("a"), param("b"), param("c")],
        vec![("s", DType::F32)],
        vec![k],
    )
}

/// A 20-op elementwise chain (the benchmark's shape of kernel).
fn chain_program(n: usize) -> Program {
    let mut insts = vec![(v(0), load(0, var(0))), (v(1), load(1, IndexExpr::Const(0)))];
    let ops = [BinaryOp::Add, BinaryOp::Mul, BinaryOp::Sub, BinaryOp::Max];
    for i in 0..20u32 {
        let inst = if i % 5 == 4 {
            Inst::Unary {
                op: UnaryOp::Tanh,
                x: v(i + 1),
            }
        } else {
            Inst::Binary {
                op: ops[i as usize % 4],
                a: v(i + 1),
                b: v(0),
            }
        };
        insts.push((v(i + 2), inst));
    }
    let k = elementwise_kernel("chain20", &[n], insts, vec![(2, v(21))]);
    program(
        vec![
            input("x", n, DType::F32),
            input("c", 1, DType::F32),
            output("y", n, DType::F32),
        ],
        vec![],
        vec![k],
    )
}

fn best_of(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// CPU time of this thread so far (from /proc, clock ticks of 10 ms): robust against
/// other processes competing for the cores, unlike wall time.
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    // After the command name: state is field 0, utime 11, stime 12.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[test]
#[ignore]
fn jit_compile_time_per_kernel() {
    for (name, p) in [
        ("adam", adam_program(1 << 10)),
        ("triad", triad_program(1 << 10)),
        ("chain20", chain_program(1 << 10)),
    ] {
        for opts in [ClifOptions::default(), ClifOptions { simd: false, fma: true }] {
            // Warm up once, then average over many compiles: Cranelift's own time per
            // function (wall), and this thread's CPU time for codegen + JIT + link.
            compile_code(p.clone(), None, &opts).unwrap();
            let reps = 40;
            let mut cl = Duration::ZERO;
            let (wall, cpu) = (Instant::now(), thread_cpu_time());
            for _ in 0..reps {
                let c = compile_code(p.clone(), None, &opts).unwrap();
                cl += c.stats.functions.iter().map(|f| f.1).sum::<Duration>();
            }
            let per = |d: Duration| d.as_secs_f64() * 1e3 / reps as f64;
            println!(
                "{name} simd={}: cranelift {:.3} ms/kernel (wall); codegen+jit+link {:.3} ms wall, {:.3} ms thread CPU",
                opts.simd,
                per(cl),
                per(wall.elapsed()),
                per(thread_cpu_time() - cpu)
            );
        }
    }
}

#[test]
#[ignore]
fn fused_update_bandwidth_vs_triad() {
    let n = 1 << 24;
    let mut adam = compile_program(adam_program(n), &ClifOptions::default()).unwrap();
    let mut triad = compile_program(triad_program(n), &ClifOptions::default()).unwrap();
    let ones = Value::full(0.5, [n], DType::F32);
    for name in ["p", "g", "m", "v"] {
        adam.set(name, &ones).unwrap();
    }
    for name in ["a", "b", "c"] {
        triad.set(name, &ones).unwrap();
    }
    adam.set_scalar("lr", 1e-3).unwrap();
    triad.set_scalar("s", 0.5).unwrap();
    // Every operand is a persistent buffer: a run is the kernel alone, no input copies.
    let empty = bind(vec![]);
    adam.run(&empty).unwrap();
    triad.run(&empty).unwrap();
    let gb = |bytes: usize, t: Duration| bytes as f64 / t.as_secs_f64() / 1e9;
    // A plain Rust triad (one thread, rustc's SSE2 auto-vectorisation) as a yardstick.
    let (mut ra, rb, rc) = (vec![0.5f32; n], vec![0.5f32; n], vec![0.25f32; n]);
    let rust_triad = best_of(5, || {
        for ((a, b), c) in ra.iter_mut().zip(&rb).zip(&rc) {
            *a = b + 0.5 * c;
        }
        std::hint::black_box(&ra);
    });
    println!(
        "rust triad, 1 thread: {:.2} ms = {:.1} GB/s ({:.1} GB/s counting write-allocate); pool threads: {}",
        rust_triad.as_secs_f64() * 1e3,
        gb(12 * n, rust_triad),
        gb(16 * n, rust_triad),
        kiln_runtime::cpu::Pool::global().threads()
    );
    for round in 0..3 {
        let ta = best_of(7, || {
            adam.run(&empty).unwrap();
        });
        let tt = best_of(7, || {
            triad.run(&empty).unwrap();
        });
        println!(
            "round {round}: fused adam update (28 B/elem) {:.2} ms = {:.1} GB/s; triad (12 B/elem, STREAM convention) {:.2} ms = {:.1} GB/s ({:.1} GB/s counting write-allocate); adam/triad-with-WA = {:.2}",
            ta.as_secs_f64() * 1e3,
            gb(28 * n, ta),
            tt.as_secs_f64() * 1e3,
            gb(12 * n, tt),
            gb(16 * n, tt),
            gb(28 * n, ta) / gb(16 * n, tt),
        );
    }
}

/// MLP 784-256-256-10, batch 128, whole train step (forward, cross-entropy, autodiff
/// backward, SGD update) compiled fused and unfused: compile stages, kernels, per-step
/// time.
#[test]
#[ignore]
fn mlp_train_step_fused_vs_unfused() {
    use kiln_compiler::autodiff::grad_tensors;
    use kiln_ir::{GraphBuilder, Init, SourceKind, Tensor};
    use kiln_runtime::compile::{CompileCache, CompileOptions};
    let (sizes, batch) = ([784usize, 256, 256, 10], 128usize);
    let b = GraphBuilder::new();
    let x = b.input("x", [batch, sizes[0]], DType::F32);
    let labels = b.input("labels", [batch], DType::I32);
    let lr = b.scalar("lr", DType::F32);
    let mut h = x.clone();
    for (i, w) in sizes.windows(2).enumerate() {
        let wt = b.param(&format!("w{i}"), [w[0], w[1]], Init::KaimingUniform { fan_in: w[0] });
        let bias = b.param(&format!("b{i}"), [w[1]], Init::Zeros);
        h = h.matmul(&wt) + &bias;
        if i + 2 < sizes.len() {
            h = h.relu();
        }
    }
    let loss = h.cross_entropy(&labels);
    b.output("loss", &loss);
    let params: Vec<Tensor> = b
        .with_graph(|g| g.sources_of(SourceKind::Param))
        .into_iter()
        .map(|id| b.tensor(id))
        .collect();
    let grads = grad_tensors(&loss, &params.iter().collect::<Vec<_>>()).unwrap();
    for (p, g) in params.iter().zip(&grads) {
        b.update(p, &(p - &(g * &lr)));
    }
    let g = b.finish().unwrap();
    let mut rng = Rng::new(1);
    let inputs = bind(vec![
        (
            "x",
            Value::new(vec![batch, 784], DType::F32, rng.f32s(batch * 784, 0.0, 1.0)).unwrap(),
        ),
        (
            "labels",
            Value::new(vec![batch], DType::I32, (0..batch).map(|i| (i % 10) as f64).collect()).unwrap(),
        ),
        ("lr", Value::scalar(0.01, DType::F32)),
    ]);
    for fuse in [true, false] {
        let cache = CompileCache::new();
        let t = Instant::now();
        let mut exe = cache
            .compile(
                &g,
                &CompileOptions {
                    fuse,
                    ..CompileOptions::default()
                },
            )
            .unwrap();
        let cold = t.elapsed();
        let st = exe.compile_stats().clone();
        let cl: Duration = st.functions.iter().map(|f| f.1).sum();
        let mut slowest = st.functions.clone();
        slowest.sort_by_key(|f| std::cmp::Reverse(f.1));
        for (name, t, bytes) in slowest.iter().take(3) {
            println!("  {name}: {:.2} ms, {bytes} B", t.as_secs_f64() * 1e3);
        }
        exe.run(&inputs).unwrap();
        let step = best_of(20, || {
            exe.run(&inputs).unwrap();
        });
        println!(
            "mlp fuse={fuse}: {} launches, {} functions; cold compile {:.1} ms (rewrite {:.1}, lower {:.1}, codegen {:.1}, jit {:.1}); cranelift {:.3} ms/function; step {:.3} ms",
            exe.launches(),
            st.functions.len(),
            cold.as_secs_f64() * 1e3,
            st.rewrite.as_secs_f64() * 1e3,
            st.lower.as_secs_f64() * 1e3,
            st.codegen.as_secs_f64() * 1e3,
            st.jit.as_secs_f64() * 1e3,
            cl.as_secs_f64() * 1e3 / st.functions.len().max(1) as f64,
            step.as_secs_f64() * 1e3
        );
    }
}

/// One matmul kernel (the MLP's first layer shape) through the executor, vs the
/// library called directly on one thread.
#[test]
#[ignore]
fn matmul_kernel_vs_library() {
    use kiln_compiler::kernel::{BufferId, Kernel, MatMulKernel, MatOperand};
    for (m, k, n) in [(128usize, 784usize, 256usize), (784, 128, 256), (512, 512, 512)] {
        let mut p = program(
            vec![
                input("a", m * k, DType::F32),
                input("b", k * n, DType::F32),
                output("c", m * n, DType::F32),
            ],
            vec![],
            vec![],
        );
        let op = |buf: u32, rs: usize| MatOperand {
            buf: BufferId(buf),
            offset: 0,
            batch_strides: vec![],
            row_stride: rs as isize,
            col_stride: 1,
        };
        p.buffers[0].role = kiln_compiler::kernel::BufferRole::Param("a".into());
        p.buffers[1].role = kiln_compiler::kernel::BufferRole::Param("b".into());
        p.kernels.push(Kernel::MatMul(MatMulKernel {
            name: "mm".into(),
            nodes: vec![],
            batch: vec![],
            m,
            n,
            k,
            a: op(0, k),
            b: op(1, n),
            out: BufferId(2),
            epilogue: None,
        }));
        let mut exe = compile_program(p, &ClifOptions::default()).unwrap();
        let empty = bind(vec![]);
        exe.run(&empty).unwrap();
        let t = best_of(20, || {
            exe.run(&empty).unwrap();
        });
        let (a, b) = (vec![0.5f32; m * k], vec![0.25f32; k * n]);
        let mut c = vec![0f32; m * n];
        let lib = best_of(20, || unsafe {
            matrixmultiply::sgemm(
                m,
                k,
                n,
                1.0,
                a.as_ptr(),
                k as isize,
                1,
                b.as_ptr(),
                n as isize,
                1,
                0.0,
                c.as_mut_ptr(),
                n as isize,
                1,
            );
        });
        let gf = |t: Duration| 2.0 * (m * n * k) as f64 / t.as_secs_f64() / 1e9;
        println!(
            "{m}x{k}x{n}: executor {:.3} ms ({:.1} GFLOP/s, {} threads), library 1 thread {:.3} ms ({:.1} GFLOP/s)",
            t.as_secs_f64() * 1e3,
            gf(t),
            kiln_runtime::cpu::Pool::global().threads(),
            lib.as_secs_f64() * 1e3,
            gf(lib)
        );
    }
}
