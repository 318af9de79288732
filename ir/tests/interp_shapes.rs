//! The interpreter on odd shapes against independent naive loops: NumPy broadcasting
//! through the DSL, reductions over every axis subset, batched matmul with broadcast
//! batch dims, conv2d (unfold + matmul) against a direct convolution, unfold/fold
//! adjointness, and movement-op round trips.

use kiln_ir::interp::evaluate_nodes;
use kiln_ir::philox::random_f64;
use kiln_ir::*;

/// Deterministic test data in (-1, 1).
fn data(n: usize, seed: i32) -> Vec<f64> {
    (0..n as u64)
        .map(|i| 2.0 * random_f64(Distribution::Uniform, seed, 0, 0, i) - 1.0)
        .collect()
}

struct Case {
    b: GraphBuilder,
    bd: Bindings,
}

impl Case {
    fn new() -> Self {
        Case {
            b: GraphBuilder::new(),
            bd: Bindings::new(),
        }
    }
    fn input(&mut self, name: &str, v: Value) -> Tensor {
        let t = self.b.input(name, v.shape.clone(), v.dtype);
        self.bd.insert(name.into(), v);
        t
    }
    /// An f32 input of `shape` filled with `data(.., seed)`.
    fn rand(&mut self, name: &str, shape: &[usize], seed: i32) -> (Tensor, Value) {
        let n = shape.iter().product();
        let v = Value::new(shape, DType::F32, data(n, seed)).unwrap();
        (self.input(name, v.clone()), v)
    }
    fn eval(&self, t: &Tensor) -> Value {
        let id = t.check().unwrap();
        let g = self.b.finish().unwrap();
        evaluate_nodes(&g, &self.bd, &[id]).unwrap().remove(0)
    }
}

#[track_caller]
fn assert_close(got: &Value, shape: &[usize], want: &[f64], rel: f64) {
    assert_eq!(got.shape.dims(), shape);
    assert_eq!(got.data.len(), want.len());
    for (i, (&g, &w)) in got.data.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= rel * w.abs().max(1.0),
            "element {i}: got {g}, want {w}"
        );
    }
}

#[test]
fn broadcasting_through_the_dsl() {
    let mut c = Case::new();
    let (x, xv) = c.rand("x", &[3], 1);
    let two = c.b.constant(2.0, DType::F32);
    let want: Vec<f64> = xv.data.iter().map(|v| v + 2.0).collect();
    assert_close(&c.eval(&(&two + &x)), &[3], &want, 0.0);
    let want: Vec<f64> = xv.data.iter().map(|v| 2.0 - v).collect();
    assert_close(&c.eval(&(2.0 - &x)), &[3], &want, 0.0);
    let s = c.input("s", Value::scalar(-0.5, DType::F32));
    let (m, mv) = c.rand("m", &[2, 3], 2);
    let want: Vec<f64> = mv.data.iter().map(|v| v * -0.5).collect();
    assert_close(&c.eval(&(&m * &s)), &[2, 3], &want, 0.0);

    // [3, 1] + [4] -> [3, 4]
    let (a, av) = c.rand("a", &[3, 1], 3);
    let (b, bv) = c.rand("b", &[4], 4);
    let want: Vec<f64> = (0..12).map(|f| av.data[f / 4] + bv.data[f % 4]).collect();
    assert_close(&c.eval(&(&a + &b)), &[3, 4], &want, 0.0);
    assert_close(&c.eval(&(&b + &a)), &[3, 4], &want, 0.0);

    // [1] + [0] -> [0]
    let (one, _) = c.rand("one", &[1], 5);
    let (zero, _) = c.rand("zero", &[0], 6);
    assert_close(&c.eval(&(&one + &zero)), &[0], &[], 0.0);

    // [2, 1, 3] * [4, 1] -> [2, 4, 3]
    let (p, pv) = c.rand("p", &[2, 1, 3], 7);
    let (q, qv) = c.rand("q", &[4, 1], 8);
    let mut want = Vec::new();
    for i in 0..2 {
        for j in 0..4 {
            for k in 0..3 {
                want.push(pv.data[i * 3 + k] * qv.data[j]);
            }
        }
    }
    assert_close(&c.eval(&(&p * &q)), &[2, 4, 3], &want, 0.0);

    // select(cond [3, 1], scalar, [1, 4]) -> [3, 4]
    let cond = c.input("cond", Value::from_bool([3, 1], &[true, false, true]).unwrap());
    let (f, fv) = c.rand("f", &[1, 4], 9);
    let want: Vec<f64> = (0..12).map(|i| if i / 4 == 1 { fv.data[i % 4] } else { 7.0 }).collect();
    // (A plain number as `on_true` would become a *bool* constant: the DSL types
    // numbers after the condition. Pass an f32 constant tensor instead.)
    let seven = c.b.constant(7.0, DType::F32);
    assert_close(&c.eval(&cond.select(&seven, &f)), &[3, 4], &want, 0.0);

    // Comparisons broadcast too: [3, 1] < [4] -> bool [3, 4].
    let lt = c.eval(&a.lt(&b));
    assert_eq!(lt.dtype, DType::Bool);
    let want: Vec<f64> = (0..12)
        .map(|f| (av.data[f / 4] < bv.data[f % 4]) as u8 as f64)
        .collect();
    assert_eq!(lt.data, want);
}

/// Naive reduction: scatter every input element into its output slot.
fn naive_reduce(v: &Value, axes: &[usize], init: f64, f: fn(f64, f64) -> f64) -> Vec<f64> {
    let dims = v.shape.dims();
    let out_dims: Vec<usize> = dims
        .iter()
        .enumerate()
        .map(|(a, &d)| if axes.contains(&a) { 1 } else { d })
        .collect();
    let out_shape = Shape::new(out_dims);
    let mut out = vec![init; out_shape.numel()];
    for flat in 0..v.data.len() {
        let mut idx = v.shape.unravel(flat);
        for &a in axes {
            idx[a] = 0;
        }
        let o = out_shape.ravel(&idx);
        out[o] = f(out[o], v.data[flat]);
    }
    out
}

#[test]
fn reductions_over_every_axis_subset_match_a_naive_loop() {
    let mut c = Case::new();
    let dims = [3usize, 17, 1, 783];
    let (x, xv) = c.rand("x", &dims, 11);
    for mask in 0u32..16 {
        let axes: Vec<usize> = (0..4).filter(|a| mask & (1 << a) != 0).collect();
        let kept: Vec<usize> = (0..4).filter(|a| !axes.contains(a)).map(|a| dims[a]).collect();
        let keep: Vec<usize> = (0..4).map(|a| if axes.contains(&a) { 1 } else { dims[a] }).collect();
        let count: usize = axes.iter().map(|&a| dims[a]).product();
        let sum = naive_reduce(&xv, &axes, 0.0, |a, b| a + b);
        assert_close(&c.eval(&x.sum(&axes, false)), &kept, &sum, 1e-12);
        assert_close(&c.eval(&x.sum(&axes, true)), &keep, &sum, 1e-12);
        let mean: Vec<f64> = sum.iter().map(|s| s / count as f64).collect();
        assert_close(&c.eval(&x.mean(&axes, false)), &kept, &mean, 1e-12);
        let max = naive_reduce(&xv, &axes, f64::NEG_INFINITY, f64::max);
        assert_close(&c.eval(&x.max(&axes, false)), &kept, &max, 0.0);
        let min = naive_reduce(&xv, &axes, f64::INFINITY, f64::min);
        assert_close(&c.eval(&x.min(&axes, true)), &keep, &min, 0.0);
    }
    // argmax along each axis agrees with the position of the naive max.
    for axis in 0..4 {
        let am = c.eval(&x.argmax(axis));
        let max = naive_reduce(&xv, &[axis], f64::NEG_INFINITY, f64::max);
        let mut out_dims = dims.to_vec();
        out_dims[axis] = 1;
        let out_shape = Shape::new(out_dims);
        for (o, &m) in max.iter().enumerate() {
            let mut idx = out_shape.unravel(o);
            idx[axis] = am.data[o] as usize;
            assert_eq!(xv.get(&idx), Some(m));
        }
    }
}

/// Naive batched matmul with NumPy batch broadcasting.
fn naive_matmul(a: &Value, b: &Value) -> (Vec<usize>, Vec<f64>) {
    let (ad, bd) = (a.shape.dims(), b.shape.dims());
    let (m, k, n) = (ad[ad.len() - 2], ad[ad.len() - 1], bd[bd.len() - 1]);
    let ba = Shape::new(ad[..ad.len() - 2].to_vec());
    let bb = Shape::new(bd[..bd.len() - 2].to_vec());
    let batch = Shape::broadcast(&ba, &bb).unwrap();
    let mut out = Vec::new();
    for bi in 0..batch.numel() {
        let idx = batch.unravel(bi);
        let pick = |s: &Shape| -> usize {
            let skip = idx.len() - s.rank();
            let sub: Vec<usize> = (0..s.rank())
                .map(|j| if s.dims()[j] == 1 { 0 } else { idx[j + skip] })
                .collect();
            s.ravel(&sub)
        };
        let (oa, ob) = (pick(&ba) * m * k, pick(&bb) * k * n);
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for p in 0..k {
                    acc += a.data[oa + i * k + p] * b.data[ob + p * n + j];
                }
                out.push(acc);
            }
        }
    }
    let mut dims = batch.0;
    dims.extend([m, n]);
    (dims, out)
}

#[test]
fn matmul_matches_a_naive_triple_loop() {
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[2, 1, 3, 17], &[4, 17, 5]),
        (&[783, 17], &[17, 3]),
        (&[1, 1], &[1, 1]),
        (&[17, 1], &[1, 3]),
        (&[3, 5], &[2, 1, 5, 1]),
        (&[1, 3, 2, 4], &[2, 1, 4, 3]),
    ];
    for (i, (sa, sb)) in shapes.into_iter().enumerate() {
        let mut c = Case::new();
        let (a, av) = c.rand("a", sa, 20 + i as i32);
        let (b, bv) = c.rand("b", sb, 40 + i as i32);
        let (dims, want) = naive_matmul(&av, &bv);
        assert_close(&c.eval(&a.matmul(&b)), &dims, &want, 1e-12);
    }
}

#[test]
fn gather_equals_one_hot_matmul() {
    let mut c = Case::new();
    let (table, tv) = c.rand("table", &[17, 3], 60);
    let idx: Vec<i32> = (0..783i32).map(|i| (i * 7919) % 17).collect();
    let it = c.input("idx", Value::from_i32([783], &idx).unwrap());
    let g = c.eval(&table.gather(&it));
    let want: Vec<f64> = idx
        .iter()
        .flat_map(|&r| tv.data[r as usize * 3..r as usize * 3 + 3].to_vec())
        .collect();
    assert_close(&g, &[783, 3], &want, 0.0);
    let via_one_hot = c.eval(&it.one_hot(17).matmul(&table));
    assert_close(&via_one_hot, &[783, 3], &want, 0.0);
}

fn window(k: [usize; 2], s: [usize; 2], p: [usize; 2]) -> Window2d {
    Window2d {
        kernel: k,
        stride: s,
        padding: p,
    }
}

#[test]
fn unfold_and_fold_are_adjoint() {
    // <unfold(x), y> == <x, fold(y)> for random x and y.
    let geometries = [
        ([2, 3, 5, 7], window([3, 2], [2, 1], [1, 0])),
        ([1, 1, 1, 1], window([1, 1], [1, 1], [0, 0])),
        ([1, 2, 17, 3], window([3, 3], [3, 2], [2, 1])),
        ([2, 1, 6, 6], window([2, 2], [2, 2], [0, 0])),
        ([1, 3, 4, 5], window([5, 1], [1, 3], [2, 0])),
    ];
    for (i, (xs, w)) in geometries.into_iter().enumerate() {
        let mut c = Case::new();
        let (x, xv) = c.rand("x", &xs, 70 + i as i32);
        let u = x.unfold2d(w);
        let (y, yv) = c.rand("y", &u.dims(), 90 + i as i32);
        let f = y.fold2d(w, [xs[2], xs[3]]);
        let (uv, fv) = (c.eval(&u), c.eval(&f));
        assert_eq!(fv.shape.dims(), &xs);
        let lhs: f64 = uv.data.iter().zip(&yv.data).map(|(a, b)| a * b).sum();
        let rhs: f64 = xv.data.iter().zip(&fv.data).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0),
            "geometry {i}: {lhs} vs {rhs}"
        );
        assert!(lhs != 0.0, "geometry {i}: degenerate test");
    }
}

#[test]
fn conv2d_matches_a_direct_convolution() {
    let mut c = Case::new();
    let (n, ci, h, wd, co, kh, kw) = (2, 3, 7, 5, 4, 3, 2);
    let (stride, pad) = ([2, 1], [1, 1]);
    let (x, xv) = c.rand("x", &[n, ci, h, wd], 100);
    let (w, wv) = c.rand("w", &[co, ci, kh, kw], 101);
    let y = c.eval(&x.conv2d(&w, stride, pad));
    let oh = (h + 2 * pad[0] - kh) / stride[0] + 1;
    let ow = (wd + 2 * pad[1] - kw) / stride[1] + 1;
    let mut want = Vec::new();
    for b in 0..n {
        for o in 0..co {
            for i in 0..oh {
                for j in 0..ow {
                    let mut acc = 0.0;
                    for ch in 0..ci {
                        for p in 0..kh {
                            for q in 0..kw {
                                let (r, s) = (
                                    (i * stride[0] + p) as isize - pad[0] as isize,
                                    (j * stride[1] + q) as isize - pad[1] as isize,
                                );
                                if r >= 0 && s >= 0 && (r as usize) < h && (s as usize) < wd {
                                    acc += xv.get(&[b, ch, r as usize, s as usize]).unwrap()
                                        * wv.get(&[o, ch, p, q]).unwrap();
                                }
                            }
                        }
                    }
                    want.push(acc);
                }
            }
        }
    }
    assert_close(&y, &[n, co, oh, ow], &want, 1e-12);
}

#[test]
fn movement_round_trips() {
    let mut c = Case::new();
    let dims = [3usize, 1, 17, 4];
    let (x, xv) = c.rand("x", &dims, 120);
    // permute then inverse permute
    let perm = [2, 0, 3, 1];
    let mut inv = [0usize; 4];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    let p = x.permute(&perm);
    assert_eq!(p.dims(), vec![17, 3, 4, 1]);
    assert_close(&c.eval(&p.permute(&inv)), &dims, &xv.data, 0.0);
    // pad then slice the original region back out
    let padded = x.pad(&[1, 0, 2, 3], &[0, 2, 1, 1], 5.0);
    let back = padded.slice(&[1, 0, 2, 3], &[4, 1, 19, 7], &[1, 1, 1, 1]);
    assert_close(&c.eval(&back), &dims, &xv.data, 0.0);
    let pv = c.eval(&padded);
    let inside = xv.numel();
    assert_eq!(pv.data.iter().filter(|&&v| v == 5.0).count(), pv.numel() - inside);
    // split into strided slices along axis 2 and concat: even then odd rows
    let even = x.slice(&[0, 0, 0, 0], &[3, 1, 17, 4], &[1, 1, 2, 1]);
    let odd = x.slice(&[0, 0, 1, 0], &[3, 1, 17, 4], &[1, 1, 2, 1]);
    assert_eq!((even.dims()[2], odd.dims()[2]), (9, 8));
    let joined = c.eval(&even.concat(&[&odd], 2));
    for a in 0..3 {
        for r in 0..17 {
            for k in 0..4 {
                let src = if r < 9 { 2 * r } else { 2 * (r - 9) + 1 };
                assert_eq!(joined.get(&[a, 0, r, k]), xv.get(&[a, 0, src, k]));
            }
        }
    }
    // split into contiguous pieces and concat back is the identity
    let parts = [x.narrow(2, 0, 5), x.narrow(2, 5, 0), x.narrow(2, 5, 12)];
    let cat = parts[0].concat(&[&parts[1], &parts[2]], 2);
    assert_close(&c.eval(&cat), &dims, &xv.data, 0.0);
    // reshape round trip and expand-then-sum
    assert_close(&c.eval(&x.reshape([51, 4]).reshape(dims)), &dims, &xv.data, 0.0);
    let e = x.broadcast_to([5, 3, 2, 17, 4]).sum(&[0, 2], false);
    let want: Vec<f64> = xv.data.iter().map(|v| v * 10.0).collect();
    assert_close(&c.eval(&e), &[3, 17, 4], &want, 1e-12);
}

#[test]
fn iota_and_elementwise_on_4097_elements() {
    let mut c = Case::new();
    let io = c.eval(&c.b.iota([4097], 0, DType::I32));
    assert!(io.data.iter().enumerate().all(|(i, &v)| v == i as f64));
    let io2 = c.eval(&c.b.iota([3, 17, 5], 1, DType::F32));
    assert!(io2.data.iter().enumerate().all(|(f, &v)| v == ((f / 5) % 17) as f64));
    let (x, xv) = c.rand("x", &[4097], 130);
    let (y, yv) = c.rand("y", &[4097], 131);
    let z = (&x * &y + 1.5).sigmoid() - x.tanh().maximum(&y);
    let want: Vec<f64> = xv
        .data
        .iter()
        .zip(&yv.data)
        .map(|(a, b)| 1.0 / (1.0 + (-(a * b + 1.5)).exp()) - a.tanh().max(*b))
        .collect();
    assert_close(&c.eval(&z), &[4097], &want, 1e-15);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Adjointness for random window geometries (that fit the image).
    #[test]
    fn unfold_fold_adjoint_for_random_geometries(
        n in 1usize..3, ch in 1usize..4, h in 1usize..9, w in 1usize..9,
        kh in 1usize..4, kw in 1usize..4, sh in 1usize..4, sw in 1usize..4,
        ph in 0usize..3, pw in 0usize..3, seed in 0i32..1000,
    ) {
        let win = window([kh, kw], [sh, sw], [ph, pw]);
        proptest::prop_assume!(win.output_size(h, w).is_some());
        let mut c = Case::new();
        let (x, xv) = c.rand("x", &[n, ch, h, w], seed);
        let u = x.unfold2d(win);
        let (y, yv) = c.rand("y", &u.dims(), seed + 1);
        let (uv, fv) = (c.eval(&u), c.eval(&y.fold2d(win, [h, w])));
        let lhs: f64 = uv.data.iter().zip(&yv.data).map(|(a, b)| a * b).sum();
        let rhs: f64 = xv.data.iter().zip(&fv.data).map(|(a, b)| a * b).sum();
        proptest::prop_assert!((lhs - rhs).abs() <= 1e-12 * lhs.abs().max(1.0), "{} vs {}", lhs, rhs);
    }

    /// Pad then slice back is the identity, and the padding holds the fill value.
    #[test]
    fn pad_slice_round_trip(
        dims in proptest::collection::vec(0usize..4, 0..4),
        pads in proptest::collection::vec((0usize..3, 0usize..3), 4),
        seed in 0i32..1000,
    ) {
        let r = dims.len();
        let low: Vec<usize> = pads[..r].iter().map(|p| p.0).collect();
        let high: Vec<usize> = pads[..r].iter().map(|p| p.1).collect();
        let mut c = Case::new();
        let (x, xv) = c.rand("x", &dims, seed);
        let p = x.pad(&low, &high, 9.0);
        let ends: Vec<usize> = (0..r).map(|a| low[a] + dims[a]).collect();
        let back = c.eval(&p.slice(&low, &ends, &vec![1; r]));
        proptest::prop_assert_eq!(&back.data, &xv.data);
        let pv = c.eval(&p);
        proptest::prop_assert_eq!(pv.data.iter().filter(|&&v| v == 9.0).count(), pv.numel() - xv.numel());
    }
}
