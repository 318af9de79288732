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

/// Max pooling over non-overlapping `k x k` windows (NCHW), via unfold + max.
#[track_caller]
pub fn max_pool2d(x: &Tensor, k: usize) -> Tensor {
    let d = x.dims();
    if d.len() != 4 {
        // Let unfold2d report the rank error with its message.
        return x.unfold2d(Window2d {
            kernel: [k, k],
            stride: [k, k],
            padding: [0, 0],
        });
    }
    let (n, c, h, w) = (d[0], d[1], d[2], d[3]);
    let window = Window2d {
        kernel: [k, k],
        stride: [k, k],
        padding: [0, 0],
    };
    let (oh, ow) = (h / k.max(1), w / k.max(1));
    x.unfold2d(window)
        .reshape([n, c, k * k, oh * ow])
        .max(&[2], false)
        .reshape([n, c, oh, ow])
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
