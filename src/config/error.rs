//! Errors in a job file: where they are (file, line, column), which job and
//! key they concern, and what to do about them.
//!
//! Every error is rendered rustc-style, with the offending line and a caret,
//! so that a person can fix the file without guessing.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One problem found in a job file.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub message: String,
    /// Byte range in the source, when known.
    pub span: Option<Range<usize>>,
    /// The job (after matrix expansion where known) the error concerns.
    pub job: Option<String>,
    /// The key the error concerns, e.g. `timeout`.
    pub key: Option<String>,
    /// What to do about it.
    pub help: Option<String>,
}

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            span: None,
            job: None,
            key: None,
            help: None,
        }
    }

    pub fn at(mut self, span: Option<Range<usize>>) -> Self {
        if self.span.is_none() {
            self.span = span;
        }
        self
    }

    pub fn job(mut self, job: impl Into<String>) -> Self {
        if self.job.is_none() {
            self.job = Some(job.into());
        }
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        if self.key.is_none() {
            self.key = Some(key.into());
        }
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// All the problems found in one job file, ready to print.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl ConfigErrors {
    pub fn single(file: &Path, source: String, error: ConfigError) -> Self {
        Self {
            file: file.to_path_buf(),
            source,
            errors: vec![error],
        }
    }
}

impl std::error::Error for ConfigErrors {}

/// 1-based line and column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = source[line_start..offset].chars().count() + 1;
    (line, col)
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            let mut headline = String::from("error: ");
            match (&e.job, &e.key) {
                (Some(job), Some(key)) => headline.push_str(&format!("job `{job}`, key `{key}`: ")),
                (Some(job), None) => headline.push_str(&format!("job `{job}`: ")),
                (None, Some(key)) => headline.push_str(&format!("key `{key}`: ")),
                (None, None) => {}
            }
            headline.push_str(&e.message);
            writeln!(f, "{headline}")?;
            match &e.span {
                Some(span) => {
                    let (line, col) = line_col(&self.source, span.start);
                    writeln!(f, "  --> {file}:{line}:{col}")?;
                    if let Some(text) = self.source.lines().nth(line - 1) {
                        let gutter = line.to_string().len();
                        let end_in_line = {
                            let (end_line, end_col) = line_col(&self.source, span.end);
                            if end_line == line && end_col > col {
                                end_col
                            } else {
                                text.chars().count() + 1
                            }
                        };
                        let width = end_in_line.saturating_sub(col).max(1);
                        writeln!(f, "{:gutter$} |", "")?;
                        writeln!(f, "{line} | {text}")?;
                        writeln!(
                            f,
                            "{:gutter$} | {:pad$}{}",
                            "",
                            "",
                            "^".repeat(width),
                            pad = col - 1
                        )?;
                    }
                }
                None => writeln!(f, "  --> {file}")?,
            }
            if let Some(help) = &e.help {
                writeln!(f, "  = help: {help}")?;
            }
        }
        if self.errors.len() > 1 {
            write!(
                f,
                "\n{} errors in {file}; nothing was run",
                self.errors.len()
            )?;
        } else {
            write!(f, "\nnothing was run")?;
        }
        Ok(())
    }
}

/// The candidate closest to `word`, if it is close enough to be a likely
/// typo: the job model's rule, so the API suggests the same keys.
pub use crate::model::job::nearest;

#[cfg(test)]
mod tests {
    use crate::config::error::{line_col, nearest};

    #[test]
    fn line_col_counts_from_one() {
        let src = "a = 1\nbb = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, 8), (2, 3));
    }

    #[test]
    fn nearest_finds_typos_only() {
        let keys = ["timeout", "kill_grace", "retries"];
        assert_eq!(nearest("timout", keys), Some("timeout"));
        assert_eq!(nearest("retris", keys), Some("retries"));
        assert_eq!(nearest("zzz", keys), None);
    }
}
