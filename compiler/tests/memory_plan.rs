//! Memory planning: liveness-based reuse lowers the peak on a chain, in-place updates
//! happen exactly when legal, and planned programs still match the interpreter.

mod lower_util;

use kiln_compiler::kernel::{BufferRole, Storage};
use kiln_compiler::lower::{lower, memory_report, peak_bytes, LowerOptions};
use kiln_ir::{DType, GraphBuilder, Init};
use lower_util::{bindings, check_mode};

/// A 12-op unfused chain over 4097 elements (tanh, then `* 1.25` = const, expand,
/// mul): with reuse, three scratch slots (the most ever live at once: the running
/// value, the expanded constant and the product) replace 23 temporaries.
#[test]
fn reuse_reduces_peak_bytes_on_a_chain() {
    let n = 4097;
    let b = GraphBuilder::new();
    let x = b.input("x", [n], DType::F32);
    let mut y = x.clone();
    for i in 0..12 {
        y = if i % 2 == 0 { y.tanh() } else { &y * 1.25 };
    }
    b.output("y", &y);
    let g = b.finish().unwrap();
    let binds = bindings(&g, 1);
    let plain = LowerOptions::unfused();
    let reuse = LowerOptions {
        reuse_memory: true,
        ..LowerOptions::unfused()
    };
    let p0 = check_mode(&g, &binds, "unfused", &plain, 0.0);
    let p1 = check_mode(&g, &binds, "unfused + reuse", &reuse, 0.0);
    assert_eq!(p0.launches(), p1.launches());
    let temps_unplanned = memory_report(&p0).temp_bytes_unplanned;
    let r = memory_report(&p1);
    let io = 2 * n * 4;
    assert_eq!(peak_bytes(&p0), io + temps_unplanned);
    let aligned = n.div_ceil(16) * 16;
    assert_eq!(r.scratch_bytes, (2 * aligned + n) * 4, "{p1}");
    assert!(
        peak_bytes(&p1) < peak_bytes(&p0) / 3,
        "{} vs {}",
        peak_bytes(&p1),
        peak_bytes(&p0)
    );
    // Fused, the chain needs no temporary at all.
    let p2 = lower(&g, &LowerOptions::fused()).unwrap();
    assert_eq!(peak_bytes(&p2), io);
}

/// Temporaries alive at the same time never share bytes (checked by evaluating a
/// diamond whose branches are both live until the join).
#[test]
fn overlapping_lifetimes_do_not_share() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 17], DType::F32);
    let a = x.exp();
    let c = x.sin();
    let d = &a * &c + &a.sum(&[1], true) - &c.max(&[0], true);
    b.output("d", &d);
    let g = b.finish().unwrap();
    let reuse = LowerOptions {
        reuse_memory: true,
        ..LowerOptions::unfused()
    };
    let p = check_mode(&g, &bindings(&g, 2), "unfused + reuse", &reuse, 0.0);
    assert!(
        p.buffers.iter().any(|b| matches!(b.storage, Storage::View { .. })),
        "{p}"
    );
}

/// Params and state are updated in place when the kernel computing the new value is
/// the last reader of the old one, even when other kernels read the parameter first
/// (the scheduler runs them before the update).
#[test]
fn updates_in_place_when_last_reader() {
    let b = GraphBuilder::new();
    let x = b.input("x", [5, 3], DType::F32);
    let w = b.param("w", [3, 4], Init::Zeros);
    let m = b.state("m", [3, 4], Init::Zeros);
    let lr = b.scalar("lr", DType::F32);
    let y = x.matmul(&w);
    b.output("y", &y);
    // gradient-like: x^T @ y, then a momentum update
    let g = x.t().matmul(&y.tanh());
    let m2 = &m * 0.9 + &g;
    b.update(&m, &m2);
    b.update(&w, &(&w - &(&m2 * &lr)));
    let graph = b.finish().unwrap();
    for (what, opts) in lower_util::modes() {
        let p = check_mode(&graph, &bindings(&graph, 3), what, &opts, 0.0);
        let r = memory_report(&p);
        if opts.in_place {
            assert_eq!((r.in_place_updates, r.copied_updates), (2, 0), "{what}:\n{p}");
        } else {
            assert_eq!((r.in_place_updates, r.copied_updates), (0, 2), "{what}:\n{p}");
        }
    }
}

/// A new value that reads the old parameter at another element, or that is also a step
/// output, is copied after the step.
#[test]
fn updates_copied_when_in_place_is_illegal() {
    let b = GraphBuilder::new();
    let p = b.param("p", [7], Init::Zeros);
    let q = b.param("q", [7], Init::Zeros);
    let rev = p.slice(&[1], &[7], &[1]).concat(&[&p.slice(&[0], &[1], &[1])], 0);
    b.update(&p, &(&rev + 1.0));
    let q2 = &q * 2.0;
    b.output("q2", &q2);
    b.update(&q, &q2);
    let g = b.finish().unwrap();
    let p = check_mode(&g, &bindings(&g, 4), "fused", &LowerOptions::fused(), 0.0);
    let r = memory_report(&p);
    assert_eq!((r.in_place_updates, r.copied_updates), (0, 2), "{p}");
    let (_, v) = p.updates[1];
    assert_eq!(p.buffers[v.0 as usize].role, BufferRole::Output("q2".into()));
}
