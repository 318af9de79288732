//! Checkpoints in the safetensors format: every parameter AND optimizer-state tensor
//! under its hierarchical graph name (`mlp.0.weight`, `mlp.0.weight.vsgd.mu`), plus the
//! trainer's counters as i64 scalars under `trainer.*` and free-form metadata (model,
//! optimizer, hyperparameters). Owns the file format only; it never runs a step.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CheckpointError {
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid safetensors checkpoint: {detail}")]
    Format { path: PathBuf, detail: String },
    #[error("checkpoint {path} has no tensor `{name}`; it holds: {available}")]
    Missing {
        path: PathBuf,
        name: String,
        available: String,
    },
    #[error("checkpoint tensor `{name}` has shape {got:?}, but the model expects {expected:?}")]
    Shape {
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
}

/// An f32 tensor with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Everything a run needs to continue bit-for-bit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    pub tensors: HashMap<String, NamedTensor>,
    pub counters: HashMap<String, i64>,
    pub metadata: HashMap<String, String>,
}

const COUNTER_PREFIX: &str = "trainer.";

impl Checkpoint {
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let bytes: Vec<(String, Vec<u8>, Vec<usize>, Dtype)> = self
            .tensors
            .iter()
            .map(|(n, t)| {
                (
                    n.clone(),
                    t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    t.shape.clone(),
                    Dtype::F32,
                )
            })
            .chain(self.counters.iter().map(|(n, v)| {
                (
                    format!("{COUNTER_PREFIX}{n}"),
                    v.to_le_bytes().to_vec(),
                    vec![],
                    Dtype::I64,
                )
            }))
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, shape, dtype)| {
                TensorView::new(*dtype, shape.clone(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| CheckpointError::Format {
                        path: path.into(),
                        detail: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = (!self.metadata.is_empty()).then(|| self.metadata.clone());
        let out = safetensors::serialize(views, meta).map_err(|e| CheckpointError::Format {
            path: path.into(),
            detail: e.to_string(),
        })?;
        // Write to a temporary name first so an interrupted save never leaves a torn file.
        let tmp = path.with_extension("safetensors.tmp");
        std::fs::write(&tmp, out).map_err(|source| CheckpointError::Write {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, path).map_err(|source| CheckpointError::Write {
            path: path.into(),
            source,
        })
    }

    pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Read {
            path: path.into(),
            source,
        })?;
        let fmt = |detail: String| CheckpointError::Format {
            path: path.into(),
            detail,
        };
        let st = SafeTensors::deserialize(&bytes).map_err(|e| fmt(e.to_string()))?;
        let (_, header) = SafeTensors::read_metadata(&bytes).map_err(|e| fmt(e.to_string()))?;
        let mut ck = Checkpoint {
            metadata: header.metadata().clone().unwrap_or_default(),
            ..Default::default()
        };
        for (name, view) in st.tensors() {
            let data = view.data();
            match view.dtype() {
                Dtype::F32 => {
                    let values = data
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    ck.tensors.insert(
                        name,
                        NamedTensor {
                            shape: view.shape().to_vec(),
                            data: values,
                        },
                    );
                }
                Dtype::I64 if name.starts_with(COUNTER_PREFIX) && data.len() == 8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(data);
                    ck.counters
                        .insert(name[COUNTER_PREFIX.len()..].to_string(), i64::from_le_bytes(b));
                }
                other => return Err(fmt(format!("tensor `{name}` has unsupported dtype {other:?}"))),
            }
        }
        Ok(ck)
    }

    /// The tensor `name` checked against the expected shape.
    pub fn tensor(&self, path: &Path, name: &str, expected: &[usize]) -> Result<&NamedTensor, CheckpointError> {
        let t = self.tensors.get(name).ok_or_else(|| {
            let mut names: Vec<&String> = self.tensors.keys().collect();
            names.sort();
            CheckpointError::Missing {
                path: path.into(),
                name: name.into(),
                available: names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
            }
        })?;
        if t.shape != expected {
            return Err(CheckpointError::Shape {
                name: name.into(),
                expected: expected.to_vec(),
                got: t.shape.clone(),
            });
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_tensors_counters_and_metadata() {
        let dir = std::env::temp_dir().join(format!("kiln-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.safetensors");
        let mut ck = Checkpoint::default();
        ck.tensors.insert(
            "mlp.0.weight".into(),
            NamedTensor {
                shape: vec![2, 3],
                data: vec![1.0, -2.5, 3.0, 0.0, f32::MIN_POSITIVE, 7.0],
            },
        );
        ck.tensors.insert(
            "mlp.0.weight.vsgd.mu".into(),
            NamedTensor {
                shape: vec![2, 3],
                data: vec![0.5; 6],
            },
        );
        ck.counters.insert("step".into(), 1234567890123);
        ck.metadata.insert("optimizer".into(), "vsgd".into());
        ck.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back, ck);
        let err = back.tensor(&path, "mlp.0.weight", &[3, 2]).unwrap_err().to_string();
        assert!(err.contains("[3, 2]") && err.contains("[2, 3]"), "{err}");
        let err = back.tensor(&path, "nope", &[1]).unwrap_err().to_string();
        assert!(err.contains("mlp.0.weight"), "{err}");
        std::fs::write(&path, b"garbage").unwrap();
        let err = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(err.contains("not a valid safetensors"), "{err}");
        let err = Checkpoint::load(&dir.join("missing.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.safetensors"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
