//! Every op, lowered fused and unfused (and with each planning pass off), evaluated by
//! the kernel-IR evaluator and compared EXACTLY with the reference interpreter on odd
//! sizes. Exactness holds because lowering never reassociates: reductions and dot
//! products accumulate in the interpreter's order.

mod lower_util;

use kiln_ir::{DType, Distribution, GraphBuilder, Init, Tensor, Window2d};
use lower_util::check;

fn finish(b: &GraphBuilder) -> kiln_ir::Graph {
    b.finish().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn unary_binary_compare_select_cast_on_odd_sizes() {
    for n in [1, 3, 17, 783, 4097] {
        let b = GraphBuilder::new();
        let x = b.input("x", [n], DType::F32);
        let y = b.input("y", [n], DType::F32);
        let mut acc = x.clone();
        for t in [
            x.neg(),
            x.exp(),
            x.log(),
            x.sqrt(),
            x.rsqrt(),
            x.recip(),
            x.abs(),
            x.sign(),
            x.tanh(),
            x.sigmoid(),
            x.relu(),
            x.sin(),
            x.cos(),
            x.powf(3.0),
            x.powf(0.5),
        ] {
            acc = &acc + &t;
        }
        let mixed = (&x - &y) * &x / &y;
        let mm = x.maximum(&y).add(x.minimum(&y));
        let pick = x.lt(&y).select(&x, &mixed);
        let flags = x.ge(&y).cast(DType::F32) + x.eq(&x).cast(DType::F32) + x.ne(&y).cast(DType::F32);
        b.output("acc", &acc);
        b.output("pick", &(pick + &mm + &flags));
        b.output("le", &x.le(&y));
        b.output("gt_i", &x.gt(&y).cast(DType::I32));
        check(&finish(&b), n as u64);
    }
}

#[test]
fn integer_arithmetic_wraps_and_casts() {
    let b = GraphBuilder::new();
    let i = b.input("i", [3, 5], DType::I32);
    let big = b.full(2_000_000_000.0, [3, 5], DType::I32);
    let w = (&i + &big) * 3 - &i.abs().neg();
    b.output("w", &w);
    b.output("relu_sign", &(i.relu() + i.sign()).maximum(0).minimum(4));
    b.output("to_f", &(i.cast(DType::F32) * 0.5).cast(DType::I32));
    b.output("bool", &i.cast(DType::Bool));
    check(&finish(&b), 7);
}

#[test]
fn broadcasting_and_scalars() {
    for (r, c) in [(1, 1), (3, 17), (17, 3), (5, 783)] {
        let b = GraphBuilder::new();
        let x = b.input("x", [r, c], DType::F32);
        let bias = b.param("bias", [c], Init::Zeros);
        let col = b.input("col", [r, 1], DType::F32);
        let lr = b.scalar("lr", DType::F32);
        let y = ((&x + &bias) * &lr - &col).relu() + 1.5;
        b.output("y", &y);
        b.output(
            "iota",
            &(b.iota([r, c], 1, DType::F32) + b.iota([r, c], 0, DType::I32).cast(DType::F32)),
        );
        check(&finish(&b), (r * c) as u64);
    }
}

#[test]
fn reductions_over_every_axis_choice() {
    for dims in [vec![1usize], vec![783], vec![3, 17], vec![17, 1, 3], vec![2, 3, 5]] {
        let b = GraphBuilder::new();
        let x = b.input("x", dims.clone(), DType::F32);
        let i = b.input("i", dims.clone(), DType::I32);
        let r = dims.len();
        for a in 0..r {
            for keep in [false, true] {
                b.output(&format!("sum{a}{keep}"), &x.exp().sum(&[a], keep));
                b.output(&format!("mean{a}{keep}"), &x.mean(&[a], keep));
                b.output(&format!("max{a}{keep}"), &(x.max(&[a], keep) * 2.0));
                b.output(&format!("min{a}{keep}"), &x.min(&[a], keep));
                b.output(&format!("isum{a}{keep}"), &i.sum(&[a], keep));
            }
            b.output(&format!("argmax{a}"), &x.argmax(a));
        }
        let all: Vec<usize> = (0..r).collect();
        b.output("all", &x.sum(&all, false));
        if r >= 2 {
            b.output("two", &x.max(&[0, r - 1], true));
        }
        check(&finish(&b), r as u64 + 11);
    }
}

#[test]
fn softmax_family_and_layer_norm() {
    for (rows, cols) in [(1, 1), (3, 17), (17, 3), (2, 783)] {
        let b = GraphBuilder::new();
        let x = b.input("x", [rows, cols], DType::F32);
        let labels = b.input("labels", [rows], DType::I32);
        b.output("softmax", &x.softmax(1));
        b.output("log_softmax", &x.log_softmax(1));
        b.output("lse", &x.logsumexp(&[1], false));
        b.output("ce", &x.cross_entropy(&labels));
        b.output("ln", &x.layer_norm(1, 1e-5));
        b.output("softmax0", &x.softmax(0));
        check(&finish(&b), (rows + cols) as u64);
    }
}

#[test]
fn movement_ops_as_views_and_copies() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3, 4, 5], DType::F32);
    let y = b.input("y", [3, 2, 5], DType::F32);
    let e = x.exp();
    b.output("reshape", &(e.reshape([12, 5]) + 1.0));
    b.output("reshape_odd", &e.reshape([5, 12]).sin());
    b.output("permute", &e.permute(&[2, 0, 1]).neg());
    b.output("slice", &e.slice(&[1, 0, 1], &[3, 4, 5], &[1, 2, 3]).sqrt());
    b.output("pad_load", &x.pad(&[1, 0, 2], &[0, 3, 1], -7.0));
    b.output("pad_compute", &(e.pad(&[0, 2, 1], &[1, 0, 0], 0.25) * 2.0));
    b.output(
        "pad_pad",
        &x.pad(&[1, 1, 0], &[0, 0, 1], 3.0)
            .tanh()
            .pad(&[0, 1, 1], &[2, 0, 0], -1.0),
    );
    b.output("concat", &x.concat(&[&y, &y.exp()], 1).abs());
    b.output(
        "concat_pad",
        &x.pad(&[0, 0, 1], &[0, 0, 0], 9.0)
            .concat(&[&x.pad(&[0, 0, 0], &[0, 0, 1], 8.0)], 0),
    );
    b.output("broadcast", &x.sum(&[1], true).broadcast_to([2, 3, 4, 5]));
    b.output(
        "chain",
        &e.permute(&[1, 0, 2])
            .reshape([4, 15])
            .slice(&[1, 2], &[4, 15], &[2, 3])
            .pad(&[1, 0], &[0, 2], 0.5),
    );
    check(&finish(&b), 3);
}

#[test]
fn matmul_plain_batched_transposed_and_epilogues() {
    for (m, k, n) in [(1, 1, 1), (3, 17, 5), (17, 3, 1), (4, 33, 9)] {
        let b = GraphBuilder::new();
        let a = b.input("a", [m, k], DType::F32);
        let w = b.param("w", [n, k], Init::Zeros);
        let bias = b.param("bias", [n], Init::Zeros);
        let res = b.input("res", [m, n], DType::F32);
        let y = (a.matmul(&w.t()) + &bias).relu() + &res;
        b.output("y", &y);
        b.output("gram", &a.t().matmul(&a));
        let batched = b.input("batched", [2, 3, k, m], DType::F32);
        b.output("batched", &batched.matmul(&a).tanh());
        let ex = b.input("ex", [3, m, k], DType::F32);
        b.output("bcast", &ex.matmul(&w.t()).exp());
        b.output("reshaped", &a.reshape([m * k, 1]).matmul(&bias.reshape([1, n])));
        check(&finish(&b), (m * k * n) as u64);
    }
}

#[test]
fn gather_one_hot_iota_random() {
    let b = GraphBuilder::new();
    let table = b.param("table", [7, 5], Init::Zeros);
    let idx = b.input("idx", [3, 4], DType::I32);
    b.output("gather", &table.gather(&idx));
    b.output("gather_computed", &(table.exp().gather(&idx) + 1.0));
    b.output("one_hot", &idx.one_hot(6));
    b.output("one_hot_t", &idx.one_hot(6).permute(&[2, 0, 1]).sum(&[0], false));
    let seed = b.scalar("seed", DType::I32);
    let step = b.scalar("step", DType::I32);
    let u = Tensor::random(&seed, &step, [17, 3], Distribution::Uniform, 2);
    let z = Tensor::random(&seed, &step, [17, 3], Distribution::Normal, 5);
    b.output("random", &(u + &z.permute(&[1, 0]).t()));
    check(&finish(&b), 5);
}

#[test]
fn convolution_unfold_fold() {
    for (stride, pad) in [([1, 1], [0, 0]), ([2, 1], [1, 2]), ([2, 3], [1, 0])] {
        let b = GraphBuilder::new();
        let x = b.input("x", [2, 3, 7, 6], DType::F32);
        let w = b.param("w", [4, 3, 3, 2], Init::Zeros);
        let y = x.conv2d(&w, stride, pad).relu();
        b.output("conv", &y);
        let window = Window2d {
            kernel: [3, 2],
            stride,
            padding: pad,
        };
        let cols = x.unfold2d(window);
        b.output("fold", &cols.exp().fold2d(window, [7, 6]));
        b.output("unfold", &(cols * 2.0));
        check(&finish(&b), stride[0] as u64 * 10 + pad[0] as u64);
    }
}

#[test]
fn sources_constants_and_repeated_outputs() {
    let b = GraphBuilder::new();
    let x = b.input("x", [3], DType::F32);
    let p = b.param("p", [3], Init::Zeros);
    let lr = b.scalar("lr", DType::F32);
    let y = &x * 2.0;
    b.output("x_again", &x);
    b.output("p_out", &p);
    b.output("lr_out", &lr);
    b.output("const", &b.full(4.0, [2, 2], DType::F32));
    b.output("y1", &y);
    b.output("y2", &y);
    b.update(&p, &(&p - &(&x * &lr)));
    check(&finish(&b), 9);
}

#[test]
fn updates_in_place_and_copied() {
    let b = GraphBuilder::new();
    let w = b.param("w", [3, 17], Init::Zeros);
    let g = b.input("g", [3, 17], DType::F32);
    let m = b.state("m", [3, 17], Init::Zeros);
    let q = b.param("q", [17], Init::Zeros);
    let lr = b.scalar("lr", DType::F32);
    let m2 = &m * 0.9 + &g;
    b.update(&m, &m2);
    b.update(&w, &(&w - &(&m2 * &lr)));
    // q's new value reads q transposed-ish (not at its own element): must be copied.
    b.update(&q, &q.slice(&[1], &[17], &[1]).concat(&[&q.slice(&[0], &[1], &[1])], 0));
    b.output("w_sum", &w.sum(&[0, 1], false));
    check(&finish(&b), 4);
}

#[test]
fn zero_sized_tensors() {
    let b = GraphBuilder::new();
    let x = b.input("x", [0, 3], DType::F32);
    let w = b.input("w", [3, 0], DType::F32);
    b.output("exp", &x.exp());
    b.output("sum", &x.sum(&[0], false));
    b.output("max", &x.max(&[0], true));
    b.output("mean", &x.mean(&[0], false));
    b.output("mm", &w.matmul(&x));
    b.output("mm0", &x.matmul(&w));
    check(&finish(&b), 12);
}

#[test]
fn unusual_updates() {
    let b = GraphBuilder::new();
    let s = b.param("s", [], Init::Zeros);
    let p = b.param("p", [3], Init::Zeros);
    let q = b.param("q", [3], Init::Zeros);
    let same = b.param("same", [2], Init::Zeros);
    let lr = b.scalar("lr", DType::F32);
    let x = b.input("x", [3], DType::F32);
    b.update(&s, &lr);
    b.update(&p, &q);
    b.update(&q, &p);
    b.update(&same, &same);
    b.output("x2", &(&x * 2.0));
    b.update(&b.state("from_input", [3], Init::Zeros), &x);
    check(&finish(&b), 13);
}
