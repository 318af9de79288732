//! Named hyperparameters: their specs (name, default, validity rule, whether they change
//! the graph's structure), validated setting by name and `key=value` parsing. Owns no
//! update maths; every optimizer holds one `Hyper` and reads its values through it.

use std::fmt;

use super::OptimError;

/// What values a hyperparameter accepts. NaN is always rejected, infinities unless the
/// rule says otherwise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Finite, `>= 0`.
    NonNegative,
    /// Finite, `> 0`.
    Positive,
    /// `> 0`, `+inf` allowed (a clip radius of infinity disables clipping).
    PositiveOrInf,
    /// The half-open interval `[0, 1)` (EMA coefficients such as Adam's betas).
    UnitHalfOpen,
    /// The closed interval `[0, 1]` (correction strengths such as SVRG's alpha).
    UnitClosed,
    /// The interval `(0.5, 1]` (VSGD's Robbins–Monro exponents kappa).
    Kappa,
    /// 0 or 1 (switches).
    Bool,
    /// An integer in `1..=max`.
    Count { max: u32 },
    /// Any integer representable as i32 (RNG seeds).
    Int32,
}

impl Rule {
    pub fn accepts(self, v: f64) -> bool {
        if v.is_nan() {
            return false;
        }
        match self {
            Rule::NonNegative => v.is_finite() && v >= 0.0,
            Rule::Positive => v.is_finite() && v > 0.0,
            Rule::PositiveOrInf => v > 0.0,
            Rule::UnitHalfOpen => (0.0..1.0).contains(&v),
            Rule::UnitClosed => (0.0..=1.0).contains(&v),
            Rule::Kappa => v > 0.5 && v <= 1.0,
            Rule::Bool => v == 0.0 || v == 1.0,
            Rule::Count { max } => v.fract() == 0.0 && v >= 1.0 && v <= max as f64,
            Rule::Int32 => v.fract() == 0.0 && v >= i32::MIN as f64 && v <= i32::MAX as f64,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::NonNegative => write!(f, "a finite number >= 0"),
            Rule::Positive => write!(f, "a finite number > 0"),
            Rule::PositiveOrInf => write!(f, "a number > 0 (inf allowed)"),
            Rule::UnitHalfOpen => write!(f, "in [0, 1)"),
            Rule::UnitClosed => write!(f, "in [0, 1]"),
            Rule::Kappa => write!(f, "in (0.5, 1]"),
            Rule::Bool => write!(f, "0 or 1 (false/true)"),
            Rule::Count { max } => write!(f, "an integer in 1..={max}"),
            Rule::Int32 => write!(f, "an integer in the i32 range"),
        }
    }
}

/// The specification of one hyperparameter.
#[derive(Clone, Copy, Debug)]
pub struct HyperSpec {
    pub name: &'static str,
    /// `None`: required, no default (IVON's `ess`, as in the reference package).
    pub default: Option<f64>,
    pub rule: Rule,
    /// Structural hyperparameters change the graph (which state exists, how many
    /// samples are drawn); changing one needs a rebuild. All others are runtime scalars.
    pub structural: bool,
    pub doc: &'static str,
}

impl HyperSpec {
    pub const fn runtime(name: &'static str, default: f64, rule: Rule, doc: &'static str) -> Self {
        HyperSpec {
            name,
            default: Some(default),
            rule,
            structural: false,
            doc,
        }
    }
    pub const fn required(name: &'static str, rule: Rule, doc: &'static str) -> Self {
        HyperSpec {
            name,
            default: None,
            rule,
            structural: false,
            doc,
        }
    }
    pub const fn structural(name: &'static str, default: f64, rule: Rule, doc: &'static str) -> Self {
        HyperSpec {
            name,
            default: Some(default),
            rule,
            structural: true,
            doc,
        }
    }
}

/// The current hyperparameter values of one optimizer, validated on every change.
#[derive(Clone, Debug)]
pub struct Hyper {
    optimizer: &'static str,
    specs: &'static [HyperSpec],
    values: Vec<Option<f64>>,
}

impl Hyper {
    /// All hyperparameters at their defaults.
    pub fn new(optimizer: &'static str, specs: &'static [HyperSpec]) -> Self {
        Hyper {
            optimizer,
            specs,
            values: specs.iter().map(|s| s.default).collect(),
        }
    }

    pub fn optimizer(&self) -> &'static str {
        self.optimizer
    }

    pub fn specs(&self) -> &'static [HyperSpec] {
        self.specs
    }

    /// The valid names, comma separated (for error messages and help texts).
    pub fn valid_names(&self) -> String {
        self.specs.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
    }

    fn index(&self, name: &str) -> Result<usize, OptimError> {
        self.specs
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| OptimError::UnknownHyper {
                optimizer: self.optimizer,
                name: name.to_string(),
                valid: self.valid_names(),
            })
    }

    /// Set `name` to `value` after checking its rule; the old value is kept on error.
    pub fn set(&mut self, name: &str, value: f64) -> Result<(), OptimError> {
        let i = self.index(name)?;
        let spec = &self.specs[i];
        if !spec.rule.accepts(value) {
            return Err(OptimError::BadValue {
                optimizer: self.optimizer,
                name: spec.name,
                value,
                rule: spec.rule.to_string(),
            });
        }
        self.values[i] = Some(value);
        Ok(())
    }

    /// Parse and apply `key=value` (the CLI's `--set`). Values are numbers, `inf`, or
    /// `true`/`false` for switches.
    pub fn set_str(&mut self, assignment: &str) -> Result<(), OptimError> {
        let (k, v) = parse_assignment(assignment)?;
        self.set(&k, v)
    }

    /// The value of `name`; an error when it is unknown or required and unset.
    pub fn get(&self, name: &str) -> Result<f64, OptimError> {
        let i = self.index(name)?;
        self.values[i].ok_or_else(|| OptimError::MissingHyper {
            optimizer: self.optimizer,
            name: self.specs[i].name,
            doc: self.specs[i].doc,
        })
    }

    /// A switch (`Rule::Bool`) as a bool.
    pub fn flag(&self, name: &str) -> Result<bool, OptimError> {
        Ok(self.get(name)? != 0.0)
    }

    /// Every hyperparameter with its current value (`None` = required and unset).
    pub fn values(&self) -> Vec<(&'static str, Option<f64>)> {
        self.specs.iter().zip(&self.values).map(|(s, v)| (s.name, *v)).collect()
    }

    /// Error unless every required hyperparameter is set.
    pub fn check_complete(&self) -> Result<(), OptimError> {
        for s in self.specs {
            self.get(s.name)?;
        }
        Ok(())
    }

    /// The values of the structural hyperparameters (a rebuild is needed when they change).
    pub fn structural_values(&self) -> Vec<(&'static str, Option<f64>)> {
        self.specs
            .iter()
            .zip(&self.values)
            .filter(|(s, _)| s.structural)
            .map(|(s, v)| (s.name, *v))
            .collect()
    }

    /// A help text: one line per hyperparameter with its default, rule and meaning.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for s in self.specs {
            let default = match s.default {
                Some(d) if d != 0.0 && d.is_finite() && (d.abs() < 1e-3 || d.abs() >= 1e6) => format!("{d:e}"),
                Some(d) => format!("{d}"),
                None => "required".to_string(),
            };
            let kind = if s.structural { ", structural" } else { "" };
            out.push_str(&format!(
                "  {:<14} default {:<10} ({}{}) {}\n",
                s.name, default, s.rule, kind, s.doc
            ));
        }
        out
    }
}

/// Parse a hyperparameter value: a number, `inf`/`-inf`, or `true`/`false`.
pub fn parse_value(s: &str) -> Option<f64> {
    match s.trim() {
        "true" => Some(1.0),
        "false" => Some(0.0),
        t => t.parse::<f64>().ok(),
    }
}

/// Split and parse `key=value`.
pub fn parse_assignment(assignment: &str) -> Result<(String, f64), OptimError> {
    let bad = || OptimError::BadAssignment {
        text: assignment.to_string(),
    };
    let (k, v) = assignment.split_once('=').ok_or_else(bad)?;
    let k = k.trim();
    if k.is_empty() {
        return Err(bad());
    }
    let v = parse_value(v).ok_or_else(bad)?;
    Ok((k.to_string(), v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[HyperSpec] = &[
        HyperSpec::runtime("lr", 0.1, Rule::NonNegative, "step size"),
        HyperSpec::required("ess", Rule::Positive, "effective sample size"),
        HyperSpec::structural("k", 1.0, Rule::Count { max: 4 }, "samples"),
    ];

    #[test]
    fn set_get_and_errors() {
        let mut h = Hyper::new("toy", SPECS);
        assert_eq!(h.get("lr").unwrap(), 0.1);
        assert!(matches!(
            h.get("ess"),
            Err(OptimError::MissingHyper { name: "ess", .. })
        ));
        h.set_str("ess=100").unwrap();
        assert_eq!(h.get("ess").unwrap(), 100.0);
        let e = h.set("lr", -1.0).unwrap_err();
        assert!(e.to_string().contains(">= 0"), "{e}");
        assert_eq!(h.get("lr").unwrap(), 0.1, "a rejected value must not be stored");
        let e = h.set("lrr", 1.0).unwrap_err().to_string();
        assert!(e.contains("lr, ess, k"), "{e}");
        assert!(h.set("k", 2.5).is_err());
        assert!(h.set("k", 5.0).is_err());
        h.set("k", 4.0).unwrap();
        assert_eq!(h.structural_values(), vec![("k", Some(4.0))]);
        assert!(h.set_str("lr").is_err());
        assert!(h.set_str("=3").is_err());
        assert!(h.set("lr", f64::NAN).is_err());
        assert!(h.set("lr", f64::INFINITY).is_err());
    }

    #[test]
    fn rules() {
        assert!(Rule::Kappa.accepts(1.0) && !Rule::Kappa.accepts(0.5) && !Rule::Kappa.accepts(1.01));
        assert!(Rule::PositiveOrInf.accepts(f64::INFINITY) && !Rule::PositiveOrInf.accepts(0.0));
        assert!(Rule::UnitHalfOpen.accepts(0.0) && !Rule::UnitHalfOpen.accepts(1.0));
        assert!(Rule::Bool.accepts(1.0) && !Rule::Bool.accepts(0.5));
        assert!(Rule::Int32.accepts(-5.0) && !Rule::Int32.accepts(3e10));
        assert_eq!(parse_value("inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(" true"), Some(1.0));
        assert_eq!(parse_value("x"), None);
    }
}
