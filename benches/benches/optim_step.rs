//! Criterion benches of `kiln bench --suite optim`: SGD, Adam and VSGD updates over one
//! flat tensor (fused and unfused) and over 200 mixed-size tensors (fused), plus the
//! triad reference, built and compiled by the same `kiln_benches` code as the CLI.
//! Throughput is the minimal bytes per step, so criterion's GiB/s is comparable with the
//! triad's. Size: `KILN_BENCH_SIZE` (default 2^24 elements).

mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use kiln_benches::{bench_optimizer, minimal_bytes, mixed_sizes, optim_graph, triad_graph, MIXED_TENSORS};
use kiln_ir::interp::Bindings;

fn optim_step(c: &mut Criterion) {
    let size = common::env_usize("SIZE", kiln_benches::DEFAULT_SIZE);
    let none = Bindings::new();
    let mut g = common::group(c, "optim");
    let triad = triad_graph(size).expect("triad graph");
    let s = [("s".to_string(), 0.999)];
    common::bench_graph(
        &mut g,
        &format!("triad/{size}"),
        &triad,
        true,
        &s,
        &none,
        Some(minimal_bytes(&triad)),
    );
    let mixed = mixed_sizes(size, MIXED_TENSORS.min(size)).expect("mixed sizes");
    for name in ["sgd", "adam", "vsgd"] {
        let opt = bench_optimizer(name).expect("optimizer");
        let scalars = opt.scalars(1).expect("scalars");
        let flat = optim_graph(opt.as_ref(), &[size]).expect("flat graph");
        let bytes = Some(minimal_bytes(&flat));
        for fuse in [true, false] {
            let id = format!("{name}/flat/{size}/{}", if fuse { "fused" } else { "unfused" });
            common::bench_graph(&mut g, &id, &flat, fuse, &scalars, &none, bytes);
        }
        let mixed_graph = optim_graph(opt.as_ref(), &mixed).expect("mixed graph");
        let id = format!("{name}/mixed200/{size}/fused");
        common::bench_graph(&mut g, &id, &mixed_graph, true, &scalars, &none, bytes);
    }
    g.finish();
}

criterion_group!(benches, optim_step);
criterion_main!(benches);
