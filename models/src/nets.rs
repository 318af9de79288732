//! The built-in models (`logreg`, `mlp`, `convnet`) and their registry. A model builds
//! its forward pass (logits) on a `GraphBuilder`; the training-step assembly adds the
//! loss, autodiff and the optimizer. Models only build graphs.

use kiln_ir::{GraphBuilder, Tensor};
use thiserror::Error;

use crate::layers::{max_pool2d, Conv2d, Linear};

/// A classifier over fixed-size examples.
pub trait Model {
    /// Registry name (`mlp`, ...); also the scope of its parameters.
    fn name(&self) -> &str;
    /// Shape of one example (without the batch axis).
    fn example_shape(&self) -> Vec<usize>;
    fn num_classes(&self) -> usize;
    /// Logits `[batch, classes]` for `x` of shape `[batch, example_shape..]`; creates the
    /// parameters under `b.scope(self.name())`.
    fn forward(&self, b: &GraphBuilder, x: &Tensor) -> Tensor;
}

/// Names `by_name` accepts.
pub const MODELS: &[&str] = &["logreg", "mlp", "convnet"];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    #[error("unknown model `{name}`; valid models: {valid}")]
    Unknown { name: String, valid: String },
    #[error("model `{model}` needs examples of shape {expected:?} (e.g. 28x28 images), but the data set has {got:?}")]
    ExampleShape {
        model: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
}

/// Build a model for examples of `example_shape` and `classes` classes.
/// `logreg` and `mlp` accept any example shape (flattened); `convnet` needs `[1, H, W]`
/// or `[H, W]` images with H and W divisible by 4.
pub fn by_name(name: &str, example_shape: &[usize], classes: usize) -> Result<Box<dyn Model>, ModelError> {
    let features: usize = example_shape.iter().product();
    match name {
        "logreg" => Ok(Box::new(LogReg { features, classes })),
        "mlp" => Ok(Box::new(Mlp {
            features,
            hidden: vec![256, 256],
            classes,
        })),
        "convnet" => {
            let (h, w) = match example_shape {
                [1, h, w] | [h, w] => (*h, *w),
                _ => (0, 0),
            };
            if h == 0 || w == 0 || h % 4 != 0 || w % 4 != 0 {
                return Err(ModelError::ExampleShape {
                    model: name.into(),
                    expected: vec![1, 28, 28],
                    got: example_shape.to_vec(),
                });
            }
            Ok(Box::new(ConvNet {
                height: h,
                width: w,
                classes,
            }))
        }
        _ => Err(ModelError::Unknown {
            name: name.into(),
            valid: MODELS.join(", "),
        }),
    }
}

fn flatten(x: &Tensor) -> Tensor {
    let d = x.dims();
    let rest: usize = d.iter().skip(1).product();
    x.reshape([d.first().copied().unwrap_or(1), rest])
}

/// Multinomial logistic regression: one linear layer.
pub struct LogReg {
    pub features: usize,
    pub classes: usize,
}

impl Model for LogReg {
    fn name(&self) -> &str {
        "logreg"
    }
    fn example_shape(&self) -> Vec<usize> {
        vec![self.features]
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn forward(&self, b: &GraphBuilder, x: &Tensor) -> Tensor {
        Linear::new(&b.scope("logreg"), self.features, self.classes, true).forward(&flatten(x))
    }
}

/// Multi-layer perceptron with ReLU; layers are named `mlp.0`, `mlp.1`, ...
pub struct Mlp {
    pub features: usize,
    pub hidden: Vec<usize>,
    pub classes: usize,
}

impl Model for Mlp {
    fn name(&self) -> &str {
        "mlp"
    }
    fn example_shape(&self) -> Vec<usize> {
        vec![self.features]
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn forward(&self, b: &GraphBuilder, x: &Tensor) -> Tensor {
        let s = b.scope("mlp");
        let mut h = flatten(x);
        let mut fan_in = self.features;
        for (i, &width) in self.hidden.iter().enumerate() {
            h = Linear::new(&s.scope(i), fan_in, width, true).forward(&h).relu();
            fan_in = width;
        }
        Linear::new(&s.scope(self.hidden.len()), fan_in, self.classes, true).forward(&h)
    }
}

/// A small VGG-style net for 28x28 images: conv(1→8, 3x3) relu maxpool2,
/// conv(8→16, 3x3) relu maxpool2, linear(16·H/4·W/4 → classes).
pub struct ConvNet {
    pub height: usize,
    pub width: usize,
    pub classes: usize,
}

impl Model for ConvNet {
    fn name(&self) -> &str {
        "convnet"
    }
    fn example_shape(&self) -> Vec<usize> {
        vec![1, self.height, self.width]
    }
    fn num_classes(&self) -> usize {
        self.classes
    }
    fn forward(&self, b: &GraphBuilder, x: &Tensor) -> Tensor {
        let s = b.scope("convnet");
        let n = x.dims().first().copied().unwrap_or(1);
        let x = x.reshape([n, 1, self.height, self.width]);
        let h = max_pool2d(&Conv2d::new(&s.scope("conv1"), 1, 8, 3, 1, 1).forward(&x).relu(), 2);
        let h = max_pool2d(&Conv2d::new(&s.scope("conv2"), 8, 16, 3, 1, 1).forward(&h).relu(), 2);
        let features = 16 * (self.height / 4) * (self.width / 4);
        Linear::new(&s.scope("fc"), features, self.classes, true).forward(&flatten(&h))
    }
}
