//! Interpreter semantics of `unfold2d` (im2col) and its adjoint `fold2d` (col2im), in
//! PyTorch's `nn.Unfold`/`nn.Fold` layout: the column tensor is `[N, C*KH*KW, L]` with
//! row `c*KH*KW + kh*KW + kw` and column `l = oh*OW + ow`. Window position (oh, ow),
//! kernel tap (kh, kw) reads image pixel `(oh*SH + kh - PH, ow*SW + kw - PW)`; pixels
//! outside the image are zero padding. No graph logic here.

use crate::graph::TensorType;
use crate::op::Window2d;
use crate::value::Value;

use super::index::for_each_index;

/// `pos*stride + tap - pad` when it lands inside `0..size`.
fn image_coord(pos: usize, tap: usize, stride: usize, pad: usize, size: usize) -> Option<usize> {
    (pos * stride + tap).checked_sub(pad).filter(|&p| p < size)
}

/// `[N, C, H, W] -> [N, C*KH*KW, OH*OW]`.
pub(super) fn unfold2d(ty: &TensorType, w: &Window2d, x: &Value) -> Vec<f64> {
    let [_, c_n, h, wd] = <[usize; 4]>::try_from(x.shape.dims()).expect("infer checks NCHW");
    let [kh_n, kw_n] = w.kernel;
    let [_, ow_n] = w.output_size(h, wd).expect("infer checks the window fits");
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        let (n, row, col) = (idx[0], idx[1], idx[2]);
        let (c, kh, kw) = (row / (kh_n * kw_n), (row / kw_n) % kh_n, row % kw_n);
        let (oh, ow) = (col / ow_n, col % ow_n);
        let ih = image_coord(oh, kh, w.stride[0], w.padding[0], h);
        let iw = image_coord(ow, kw, w.stride[1], w.padding[1], wd);
        out.push(match (ih, iw) {
            (Some(ih), Some(iw)) => x.data[((n * c_n + c) * h + ih) * wd + iw],
            _ => 0.0,
        });
    });
    out
}

/// `[N, C*KH*KW, OH*OW] -> [N, C, H, W]`: each pixel is the sum, over kernel taps in
/// (kh, kw) order, of the column entries that `unfold2d` would have read from it.
pub(super) fn fold2d(ty: &TensorType, w: &Window2d, cols: &Value) -> Vec<f64> {
    let [_, _, h, wd] = <[usize; 4]>::try_from(ty.shape.dims()).expect("fold2d output is NCHW");
    let [kh_n, kw_n] = w.kernel;
    let [oh_n, ow_n] = w.output_size(h, wd).expect("infer checks the window fits");
    let (rows, l) = (cols.shape.dims()[1], cols.shape.dims()[2]);
    // Window position along one axis whose tap `tap` reads pixel `p`, if any.
    let window_pos = |p: usize, tap: usize, stride: usize, pad: usize, count: usize| {
        (p + pad)
            .checked_sub(tap)
            .filter(|q| q % stride == 0)
            .map(|q| q / stride)
            .filter(|&o| o < count)
    };
    let mut out = Vec::with_capacity(ty.shape.numel());
    for_each_index(ty.shape.dims(), |_, idx| {
        let (n, c, ih, iw) = (idx[0], idx[1], idx[2], idx[3]);
        let mut acc = 0.0;
        for kh in 0..kh_n {
            let Some(oh) = window_pos(ih, kh, w.stride[0], w.padding[0], oh_n) else {
                continue;
            };
            for kw in 0..kw_n {
                let Some(ow) = window_pos(iw, kw, w.stride[1], w.padding[1], ow_n) else {
                    continue;
                };
                let row = (c * kh_n + kh) * kw_n + kw;
                acc += cols.data[(n * rows + row) * l + oh * ow_n + ow];
            }
        }
        out.push(acc);
    });
    out
}
