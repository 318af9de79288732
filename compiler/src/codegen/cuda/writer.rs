//! An indentation-aware text buffer for emitting CUDA C. Owns layout only (lines,
//! indentation, braces); it knows nothing about kernels or the kernel IR.

/// Accumulates lines of C with four-space indentation.
#[derive(Default)]
pub(crate) struct Code {
    text: String,
    depth: usize,
}

impl Code {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// One line at the current indentation (empty lines carry no trailing spaces).
    pub(crate) fn line(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        if !s.is_empty() {
            for _ in 0..self.depth {
                self.text.push_str("    ");
            }
            self.text.push_str(s);
        }
        self.text.push('\n');
    }

    /// A line ending in `{`; the following lines are indented one level deeper.
    pub(crate) fn open(&mut self, s: impl AsRef<str>) {
        let s = s.as_ref();
        if s.is_empty() {
            self.line("{");
        } else {
            self.line(format!("{s} {{"));
        }
        self.depth += 1;
    }

    /// Closes the innermost `{` (with an optional suffix such as `;`).
    pub(crate) fn close(&mut self) {
        self.close_with("");
    }

    pub(crate) fn close_with(&mut self, suffix: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.line(format!("}}{suffix}"));
    }

    /// A `// ...` comment line (multi-line text becomes several comment lines).
    pub(crate) fn comment(&mut self, s: impl AsRef<str>) {
        for l in s.as_ref().lines() {
            self.line(format!("// {l}").trim_end());
        }
    }

    pub(crate) fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_blocks() {
        let mut c = Code::new();
        c.open("if (x)");
        c.line("y = 1;");
        c.line("");
        c.close_with(";");
        c.comment("two\nlines");
        assert_eq!(c.finish(), "if (x) {\n    y = 1;\n\n};\n// two\n// lines\n");
    }
}
