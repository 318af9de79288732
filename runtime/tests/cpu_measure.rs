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
