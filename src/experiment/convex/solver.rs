//! The reference minimum f* of a convex problem: damped Newton on the full training data
//! in f64 (explicit Hessian, Cholesky solve, Armijo backtracking), plus the dense linear
//! algebra it needs (Cholesky factor and solve, also used by SVRH). Owns no data loading
//! and no plotting.
//!
//! Accuracy: F is λ-strongly convex, so `F(θ) − f* ≤ ‖∇F(θ)‖² / (2λ)`. Newton stops when
//! that bound is below 1e-20 (or when the Newton decrement stops shrinking at the f64
//! floor); the bound is reported with the solution.

use super::problems::Problem;

/// The reference solution of one problem.
#[derive(Clone, Debug)]
pub struct Solution {
    pub theta: Vec<f64>,
    pub f_star: f64,
    pub grad_norm: f64,
    /// `‖∇F‖² / (2λ)`: an upper bound on `F(θ) − f*`.
    pub gap_bound: f64,
    pub iterations: usize,
    pub seconds: f64,
    /// Objective after each Newton iteration (for the record).
    pub history: Vec<f64>,
}

/// Lower-triangular Cholesky factor of the symmetric `n × n` matrix `a` (row-major), or
/// `None` when `a` is not (numerically) positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for j in 0..n {
        let mut s = a[j * n + j];
        for k in 0..j {
            s -= l[j * n + k] * l[j * n + k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        let djj = s.sqrt();
        l[j * n + j] = djj;
        for i in j + 1..n {
            let (ri, rj) = (i * n, j * n);
            let mut s = a[ri + j];
            for k in 0..j {
                s -= l[ri + k] * l[rj + k];
            }
            l[ri + j] = s / djj;
        }
    }
    Some(l)
}

/// Solve `L Lᵀ x = b` for the factor `l` of [`cholesky`].
pub fn cholesky_solve(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut y = b.to_vec();
    for i in 0..n {
        let mut s = y[i];
        for k in 0..i {
            s -= l[i * n + k] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = y[i];
        for k in i + 1..n {
            s -= l[k * n + i] * y[k];
        }
        y[i] = s / l[i * n + i];
    }
    y
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Minimise F of `p` from θ = 0 with damped Newton.
pub fn newton(p: &Problem) -> anyhow::Result<Solution> {
    let started = std::time::Instant::now();
    let d = p.dim();
    let mut theta = vec![0.0; d];
    let (mut f, mut g) = p.objective_grad(&theta);
    let mut history = vec![f];
    let mut iterations = 0;
    let mut last_decrement = f64::INFINITY;
    for _ in 0..100 {
        let gn = norm(&g);
        if gn * gn / (2.0 * p.lambda) < 1e-20 {
            break;
        }
        let h = p.hessian(&theta);
        let l = cholesky(&h, d).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: the Hessian is not positive definite (lambda = {})",
                p.name,
                p.lambda
            )
        })?;
        let neg_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let step = cholesky_solve(&l, d, &neg_g);
        let decrement: f64 = -step.iter().zip(&g).map(|(s, gv)| s * gv).sum::<f64>();
        // Armijo backtracking (a full step once close).
        let mut t = 1.0;
        let (mut f_new, mut g_new, mut theta_new);
        loop {
            theta_new = theta.iter().zip(&step).map(|(a, s)| a + t * s).collect::<Vec<f64>>();
            (f_new, g_new) = p.objective_grad(&theta_new);
            // Armijo; near the solution (where F's rounding, ~1e-16·n, hides the decrease)
            // a step that shrinks the gradient is taken instead.
            let armijo = f_new <= f - 0.25 * t * decrement;
            let close = decrement < 1e-8 && norm(&g_new) < gn;
            if armijo || close || t < 1e-10 {
                break;
            }
            t *= 0.5;
        }
        iterations += 1;
        // At the f64 floor F may no longer decrease; a smaller gradient still counts.
        let improved = f_new.is_finite() && (f_new < f || norm(&g_new) < gn);
        if !improved {
            break;
        }
        theta = theta_new;
        f = f_new;
        g = g_new;
        history.push(f);
        if decrement >= last_decrement && decrement < 1e-24 {
            break;
        }
        last_decrement = decrement;
    }
    let grad_norm = norm(&g);
    Ok(Solution {
        theta,
        f_star: f,
        grad_norm,
        gap_bound: grad_norm * grad_norm / (2.0 * p.lambda),
        iterations,
        seconds: started.elapsed().as_secs_f64(),
        history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_spd_system() {
        // A = Bᵀ B + I for an odd-sized B.
        let n = 5;
        let b: Vec<f64> = (0..n * n).map(|i| ((i * 7 + 3) % 11) as f64 / 5.0 - 1.0).collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] =
                    (0..n).map(|k| b[k * n + i] * b[k * n + j]).sum::<f64>() + if i == j { 1.0 } else { 0.0 };
            }
        }
        let x_true: Vec<f64> = (0..n).map(|i| i as f64 - 1.5).collect();
        let rhs: Vec<f64> = (0..n).map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum()).collect();
        let l = cholesky(&a, n).unwrap();
        let x = cholesky_solve(&l, n, &rhs);
        for (u, v) in x.iter().zip(&x_true) {
            assert!((u - v).abs() < 1e-12, "{u} vs {v}");
        }
        let mut neg = a.clone();
        neg[0] = -1.0;
        assert!(cholesky(&neg, n).is_none());
    }
}
