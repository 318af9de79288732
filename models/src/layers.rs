//! Layers written in the DSL: each creates its parameters (named under the builder's
//! scope, e.g. `mlp.0.weight`) when constructed and applies itself in `forward`.
//! Layers only build graph nodes; they never run anything.
//!
//! Conventions: `Linear` stores its weight as `[in, out]` (so `forward` is `x @ W + b`,
//! no transpose); convolutions are NCHW with weights `[out, in, kh, kw]`; initialisation
//! follows PyTorch's defaults (uniform ±1/√fan_in for weights and biases).

use kiln_ir::{DType, GraphBuilder, Init, Tensor, Window2d};

fn default_bias_init(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        low: -bound,
        high: bound,
    }
}

/// `y = x @ W + b` over the last axis of `x`.
pub struct Linear {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
}

impl Linear {
    #[track_caller]
    pub fn new(b: &GraphBuilder, fan_in: usize, fan_out: usize, bias: bool) -> Self {
        let weight = b.param("weight", [fan_in, fan_out], Init::KaimingUniform { fan_in });
        let bias = bias.then(|| b.param("bias", [fan_out], default_bias_init(fan_in)));
        Linear { weight, bias }
    }

    /// `x`: `[..., in]` -> `[..., out]` (leading axes are flattened into the matmul rows).
    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let dims = x.dims();
        let fan_in = self.weight.dims()[0];
        let rows: usize = dims[..dims.len().saturating_sub(1)].iter().product();
        let y = if dims.len() == 2 {
            x.matmul(&self.weight)
        } else {
            x.reshape([rows, fan_in]).matmul(&self.weight)
        };
        let y = match &self.bias {
            Some(bias) => y + bias,
            None => y,
        };
        if dims.len() == 2 {
            y
        } else {
            let mut out = dims.clone();
            if let Some(last) = out.last_mut() {
                *last = self.weight.dims()[1];
            }
            y.reshape(out)
        }
    }
}

/// 2-D convolution (NCHW), implemented as unfold + matmul by the DSL.
pub struct Conv2d {
    pub weight: Tensor,
    pub bias: Option<Tensor>,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl Conv2d {
    #[track_caller]
    pub fn new(b: &GraphBuilder, c_in: usize, c_out: usize, kernel: usize, stride: usize, padding: usize) -> Self {
        let fan_in = c_in * kernel * kernel;
        let weight = b.param("weight", [c_out, c_in, kernel, kernel], Init::KaimingUniform { fan_in });
        let bias = Some(b.param("bias", [c_out], default_bias_init(fan_in)));
        Conv2d {
            weight,
            bias,
            stride: [stride; 2],
            padding: [padding; 2],
        }
    }

    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = x.conv2d(&self.weight, self.stride, self.padding);
        match &self.bias {
            Some(bias) => {
                let c = bias.dims()[0];
                y + &bias.reshape([1, c, 1, 1])
            }
            None => y,
        }
    }
}

/// Max pooling over non-overlapping `k x k` windows (NCHW); rows and columns past the
/// last whole window are dropped (PyTorch's floor mode).
///
/// Written as a reshape `[n, c, oh, k, ow, k]` + max over the two window axes rather than
/// unfold + max: the windows do not overlap, so every element belongs to exactly one
/// window, the reshape is a free view, and the backward pass (the max's tie mask times
/// the gradient) stays elementwise instead of becoming a fold2d scatter, which fuses
/// badly and was the slowest kernel of the conv net's step.
#[track_caller]
pub fn max_pool2d(x: &Tensor, k: usize) -> Tensor {
    let d = x.dims();
    let window = Window2d {
        kernel: [k, k],
        stride: [k, k],
        padding: [0, 0],
    };
    if d.len() != 4 || k == 0 || d[2] < k || d[3] < k {
        // Let unfold2d report the rank / window error with its message.
        return x.unfold2d(window);
    }
    let (n, c, h, w) = (d[0], d[1], d[2], d[3]);
    let (oh, ow) = (h / k, w / k);
    let whole = if (oh * k, ow * k) == (h, w) {
        x.clone()
    } else {
        x.slice(&[0, 0, 0, 0], &[n, c, oh * k, ow * k], &[1, 1, 1, 1])
    };
    whole.reshape([n, c, oh, k, ow, k]).max(&[3, 5], false)
}

/// Layer normalisation over the last axis with a learned scale and shift.
pub struct LayerNorm {
    pub gamma: Tensor,
    pub beta: Tensor,
    pub eps: f64,
}

impl LayerNorm {
    #[track_caller]
    pub fn new(b: &GraphBuilder, dim: usize) -> Self {
        LayerNorm {
            gamma: b.param("weight", [dim], Init::Constant(1.0)),
            beta: b.param("bias", [dim], Init::Zeros),
            eps: 1e-5,
        }
    }

    #[track_caller]
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let axis = x.rank().saturating_sub(1);
        x.layer_norm(axis, self.eps) * &self.gamma + &self.beta
    }
}

/// Token embedding: rows of a `[vocab, dim]` table picked by i32 ids.
pub struct Embedding {
    pub table: Tensor,
}

impl Embedding {
    #[track_caller]
    pub fn new(b: &GraphBuilder, vocab: usize, dim: usize) -> Self {
        Embedding {
            table: b.param("weight", [vocab, dim], Init::Normal { mean: 0.0, std: 1.0 }),
        }
    }

    #[track_caller]
    pub fn forward(&self, ids: &Tensor) -> Tensor {
        if ids.dtype() != DType::I32 {
            return self.table.gather(&ids.cast(DType::I32));
        }
        self.table.gather(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::interp::{evaluate, Bindings};
    use kiln_ir::{DType, Value};

    #[test]
    fn max_pool_takes_the_max_of_each_whole_window_and_drops_the_rest() {
        let (n, c, h, w, k) = (2, 3, 5, 7, 2);
        let b = GraphBuilder::new();
        let x = b.input("x", [n, c, h, w], DType::F32);
        b.output("y", &max_pool2d(&x, k));
        let g = b.finish().unwrap();
        // A scrambled but distinct pattern so the max's position varies per window.
        let data: Vec<f64> = (0..n * c * h * w)
            .map(|i| ((i * 37 + 11) % 101) as f64 - 50.0)
            .collect();
        let bind = Bindings::from([("x".into(), Value::new([n, c, h, w], DType::F32, data.clone()).unwrap())]);
        let y = evaluate(&g, &bind).unwrap().output(&g, "y").unwrap().clone();
        let (oh, ow) = (h / k, w / k);
        assert_eq!(y.shape.dims(), &[n, c, oh, ow]);
        for (i, got) in y.data.iter().enumerate() {
            let (p, q, nc) = (i / ow % oh, i % ow, i / (oh * ow));
            let want = (0..k * k)
                .map(|t| data[nc * h * w + (p * k + t / k) * w + q * k + t % k])
                .fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(*got, want, "output {i}");
        }
    }

    #[test]
    fn max_pool_reports_bad_ranks_and_windows() {
        let b = GraphBuilder::new();
        let x = b.input("x", [4, 4], DType::F32);
        assert!(max_pool2d(&x, 2).check().is_err());
        let x = b.input("x4", [1, 1, 1, 4], DType::F32);
        assert!(max_pool2d(&x, 2).check().is_err());
    }
}
