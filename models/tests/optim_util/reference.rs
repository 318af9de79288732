//! Independent, straightforward f64 implementations of every optimizer, written from the
//! research notes element by element with plain loops. They share no code with kiln's
//! graph builders and are the second opinion the trajectory tests compare against.

pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub buf: Option<Vec<f64>>,
}

impl Sgd {
    pub fn new(lr: f64, momentum: f64, dampening: f64, weight_decay: f64, nesterov: bool) -> Self {
        Sgd {
            lr,
            momentum,
            dampening,
            weight_decay,
            nesterov,
            buf: None,
        }
    }

    pub fn step(&mut self, theta: &mut [f64], g: &[f64]) {
        let mut d: Vec<f64> = g
            .iter()
            .zip(theta.iter())
            .map(|(g, t)| g + self.weight_decay * t)
            .collect();
        if self.momentum != 0.0 {
            let buf = match self.buf.take() {
                None => d.clone(),
                Some(b) => b
                    .iter()
                    .zip(&d)
                    .map(|(b, d)| self.momentum * b + (1.0 - self.dampening) * d)
                    .collect(),
            };
            if self.nesterov {
                for (di, bi) in d.iter_mut().zip(&buf) {
                    *di += self.momentum * bi;
                }
            } else {
                d = buf.clone();
            }
            self.buf = Some(buf);
        }
        for (t, d) in theta.iter_mut().zip(&d) {
            *t -= self.lr * d;
        }
    }
}

pub struct Adam {
    pub lr: f64,
    pub b1: f64,
    pub b2: f64,
    pub eps: f64,
    pub wd: f64,
    pub decoupled: bool,
    pub m: Vec<f64>,
    pub v: Vec<f64>,
    pub t: i32,
}

impl Adam {
    pub fn new(n: usize, lr: f64, b1: f64, b2: f64, eps: f64, wd: f64, decoupled: bool) -> Self {
        Adam {
            lr,
            b1,
            b2,
            eps,
            wd,
            decoupled,
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }

    pub fn step(&mut self, theta: &mut [f64], g: &[f64]) {
        self.t += 1;
        let bc1 = 1.0 - self.b1.powi(self.t);
        let bc2 = 1.0 - self.b2.powi(self.t);
        for i in 0..theta.len() {
            let mut gi = g[i];
            if self.decoupled {
                theta[i] *= 1.0 - self.lr * self.wd;
            } else {
                gi += self.wd * theta[i];
            }
            self.m[i] = self.b1 * self.m[i] + (1.0 - self.b1) * gi;
            self.v[i] = self.b2 * self.v[i] + (1.0 - self.b2) * gi * gi;
            let mhat = self.m[i] / bc1;
            let vhat = self.v[i] / bc2;
            theta[i] -= self.lr * mhat / (vhat.sqrt() + self.eps);
        }
    }
}

/// VSGD exactly as the appendix pseudocode of vsgd.md (with the t = 1 branch).
pub struct Vsgd {
    pub lr: f64,
    pub kg: f64,
    pub gamma: f64,
    pub kappa1: f64,
    pub kappa2: f64,
    pub eps: f64,
    pub wd: f64,
    pub mu: Vec<f64>,
    pub bg: Vec<f64>,
    pub bh: Vec<f64>,
    pub t: u32,
}

impl Vsgd {
    pub fn new(n: usize, lr: f64, wd: f64) -> Self {
        Vsgd {
            lr,
            kg: 30.0,
            gamma: 1e-8,
            kappa1: 0.81,
            kappa2: 0.9,
            eps: 1e-8,
            wd,
            mu: vec![0.0; n],
            bg: vec![0.0; n],
            bh: vec![0.0; n],
            t: 0,
        }
    }

    pub fn step(&mut self, theta: &mut [f64], g: &[f64]) {
        self.t += 1;
        let t = self.t as f64;
        let (rho1, rho2) = (t.powf(-self.kappa1), t.powf(-self.kappa2));
        let a2 = 2.0 * self.gamma + 1.0 + 1e-4;
        for i in 0..theta.len() {
            theta[i] *= 1.0 - self.lr * self.wd;
            let (sg, sh) = if self.t == 1 {
                (2.0 * self.gamma / (a2 - 1.0), 2.0 * self.kg * self.gamma / (a2 - 1.0))
            } else {
                (self.bg[i] / a2, self.bh[i] / a2)
            };
            let mp = self.mu[i];
            let mu = (g[i] * sg + mp * sh) / (sg + sh);
            let s2 = sg * sh / (sg + sh);
            let m2 = s2 + mu * mu;
            self.bg[i] = (1.0 - rho1) * self.bg[i] + rho1 * (2.0 * self.gamma + m2 - 2.0 * mu * mp + mp * mp);
            self.bh[i] =
                (1.0 - rho2) * self.bh[i] + rho2 * (2.0 * self.kg * self.gamma + m2 - 2.0 * g[i] * mu + g[i] * g[i]);
            self.mu[i] = mu;
            theta[i] -= self.lr / (m2.sqrt() + self.eps) * mu;
        }
    }
}

/// Constant VSGD (kiln's frozen-precision reading): s_g, s_h stay at their priors.
pub struct ConstantVsgd {
    pub lr: f64,
    pub kg: f64,
    pub gamma: f64,
    pub eps: f64,
    pub wd: f64,
    pub mu: Vec<f64>,
}

impl ConstantVsgd {
    pub fn step(&mut self, theta: &mut [f64], g: &[f64]) {
        let a2 = 2.0 * self.gamma + 1.0 + 1e-4;
        let sg = 2.0 * self.gamma / (a2 - 1.0);
        let sh = 2.0 * self.kg * self.gamma / (a2 - 1.0);
        for i in 0..theta.len() {
            theta[i] *= 1.0 - self.lr * self.wd;
            let mu = (g[i] * sg + self.mu[i] * sh) / (sg + sh);
            let m2 = sg * sh / (sg + sh) + mu * mu;
            self.mu[i] = mu;
            theta[i] -= self.lr * mu / (m2.sqrt() + self.eps);
        }
    }
}

/// IVON, the generator of ivon_poco.md's appendix, per element.
#[derive(Clone)]
pub struct Ivon {
    pub lr: f64,
    pub ess: f64,
    pub h0: f64,
    pub b1: f64,
    pub b2: f64,
    pub wd: f64,
    pub clip: f64,
    pub debias: bool,
    pub rescale: bool,
    pub h: Vec<f64>,
    pub mom: Vec<f64>,
    pub t: i32,
}

impl Ivon {
    #[allow(clippy::too_many_arguments)]
    pub fn new(n: usize, lr: f64, ess: f64, h0: f64, b1: f64, b2: f64, wd: f64, clip: f64) -> Self {
        Ivon {
            lr,
            ess,
            h0,
            b1,
            b2,
            wd,
            clip,
            debias: true,
            rescale: true,
            h: vec![h0; n],
            mom: vec![0.0; n],
            t: 0,
        }
    }

    pub fn sigma(&self) -> Vec<f64> {
        self.h.iter().map(|h| 1.0 / (self.ess * (h + self.wd)).sqrt()).collect()
    }

    /// The sampled weights θ = m + σ z.
    pub fn sample(&self, m: &[f64], z: &[f64]) -> Vec<f64> {
        let s = self.sigma();
        (0..m.len()).map(|i| m[i] + s[i] * z[i]).collect()
    }

    /// One step from per-sample gradients `gs[k]` at θ_k with noise `zs[k]`.
    pub fn step(&mut self, m: &mut [f64], gs: &[Vec<f64>], zs: &[Vec<f64>]) {
        let s = self.sigma();
        let n = m.len();
        let mut gbar = vec![0.0; n];
        let mut nxg = vec![0.0; n];
        for (k, (g, z)) in gs.iter().zip(zs).enumerate() {
            for i in 0..n {
                let ge = g[i] * (s[i] * z[i]);
                if k == 0 {
                    gbar[i] = g[i];
                    nxg[i] = ge;
                } else {
                    gbar[i] += (g[i] - gbar[i]) / (k + 1) as f64;
                    nxg[i] += (ge - nxg[i]) / (k + 1) as f64;
                }
            }
        }
        let hhat: Vec<f64> = (0..n).map(|i| nxg[i] * (self.h[i] + self.wd) * self.ess).collect();
        self.update(m, &gbar, &hhat);
    }

    /// The IVON update from a gradient estimate and a Hessian sample.
    pub fn update(&mut self, m: &mut [f64], ghat: &[f64], hhat: &[f64]) {
        self.t += 1;
        let lr = if self.rescale {
            self.lr * (self.h0 + self.wd)
        } else {
            self.lr
        };
        let d = if self.debias { 1.0 - self.b1.powi(self.t) } else { 1.0 };
        for i in 0..m.len() {
            let h = self.h[i];
            self.mom[i] = self.b1 * self.mom[i] + (1.0 - self.b1) * ghat[i];
            let hn = self.b2 * h
                + (1.0 - self.b2) * hhat[i]
                + 0.5 * (1.0 - self.b2) * (1.0 - self.b2) * (h - hhat[i]) * (h - hhat[i]) / (h + self.wd);
            self.h[i] = hn;
            let step = (self.mom[i] / d + self.wd * m[i]) / (hn + self.wd);
            m[i] -= lr * step.clamp(-self.clip, self.clip);
        }
    }
}

/// SVRG / α-SVRG with an SGD base.
pub struct Svrg {
    pub sgd: Sgd,
    pub alpha: f64,
    pub snapshot: Vec<f64>,
    pub mu: Vec<f64>,
}

impl Svrg {
    /// Start a refresh: snapshot θ and zero μ̃.
    pub fn begin_refresh(&mut self, theta: &[f64]) {
        self.snapshot = theta.to_vec();
        self.mu = vec![0.0; theta.len()];
    }
    pub fn accumulate(&mut self, weight: f64, g_snapshot: &[f64]) {
        for (m, g) in self.mu.iter_mut().zip(g_snapshot) {
            *m += weight * g;
        }
    }
    pub fn step(&mut self, theta: &mut [f64], g_in: &[f64], g_out: &[f64]) {
        let v: Vec<f64> = (0..theta.len())
            .map(|i| g_in[i] - self.alpha * (g_out[i] - self.mu[i]))
            .collect();
        self.sgd.step(theta, &v);
    }
}

/// IVON-PoCo as ivon_poco.md §3.6.
pub struct Poco {
    pub ivon: Ivon,
    pub alpha: f64,
    pub prox: bool,
    pub m_out: Vec<f64>,
    pub h_out: Vec<f64>,
    pub g_out: Vec<f64>,
    pub hbar_out: Vec<f64>,
}

impl Poco {
    pub fn sigma_out(&self) -> Vec<f64> {
        self.h_out
            .iter()
            .map(|h| 1.0 / (self.ivon.ess * (h + self.ivon.wd)).sqrt())
            .collect()
    }
    pub fn begin_refresh(&mut self, m: &[f64]) {
        self.m_out = m.to_vec();
        self.h_out = self.ivon.h.clone();
        self.g_out = vec![0.0; m.len()];
        self.hbar_out = vec![0.0; m.len()];
    }
    /// The anchor sample of a refresh micro-batch.
    pub fn anchor_sample(&self, z: &[f64]) -> Vec<f64> {
        let s = self.sigma_out();
        (0..z.len()).map(|i| self.m_out[i] + s[i] * z[i]).collect()
    }
    pub fn accumulate(&mut self, weight: f64, g: &[f64], z: &[f64]) {
        let s = self.sigma_out();
        for i in 0..g.len() {
            self.g_out[i] += weight * g[i];
            self.hbar_out[i] += weight * g[i] * z[i] / s[i];
        }
    }
    pub fn step(&mut self, m: &mut [f64], g_in: &[f64], z_in: &[f64], g_out: &[f64], z_out: &[f64]) {
        let s_in = self.ivon.sigma();
        let s_out = self.sigma_out();
        let n = m.len();
        let mut gc = vec![0.0; n];
        let mut hc = vec![0.0; n];
        for i in 0..n {
            let hin = g_in[i] * z_in[i] / s_in[i];
            let hout = g_out[i] * z_out[i] / s_out[i];
            gc[i] = g_in[i] - self.alpha * (g_out[i] - self.g_out[i]);
            if self.prox {
                gc[i] += self.alpha * (self.hbar_out[i] - hout) * (m[i] - self.m_out[i]);
            }
            hc[i] = hin - self.alpha * (hout - self.hbar_out[i]);
        }
        self.ivon.update(m, &gc, &hc);
    }
}
