//! Where `drover exec --results` puts each job's output, as GNU parallel
//! 20221122 names the files: `DIR/1/ARG1/2/ARG2/{seq,stdout,stderr}` for a
//! plain DIR (each input source's number, or its `--header` name, then its
//! argument with `\` `TAB` NUL `/` written `\\` `\t` `\0` `\_`); for a DIR
//! with replacement strings, that path filled in: a folder holding the three
//! files when it ends in `/`, else the stdout file itself beside `.err` and
//! `.seq`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::template::{Fill, Template};

/// The longest file name GNU parallel finds it can make (on ext4, 255):
/// a longer folder name is cut to it.
const NAME_MAX: usize = 255;

/// `--results DIR`, resolved.
#[derive(Debug, Clone)]
pub struct Results {
    dir: String,
    /// DIR with replacement strings in it.
    template: Option<Template>,
    /// The columns' names, from `--header` (else their numbers).
    names: Vec<String>,
}

/// One job's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFiles {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Holds the job's number (no newline).
    pub seq: PathBuf,
}

impl Results {
    /// `template` is DIR parsed as a command word; `names` the header's.
    pub fn new(dir: &str, template: Template, names: Vec<String>) -> Self {
        Self {
            dir: dir.to_string(),
            template: template.has_replacements().then_some(template),
            names,
        }
    }

    /// Whether the files are named after the arguments (a plain DIR).
    pub fn by_arguments(&self) -> bool {
        self.template.is_none()
    }

    /// The files of the job with these arguments (one record's columns).
    pub fn files(&self, args: &[String], seq: u64, slot: usize) -> ResultFiles {
        let in_dir = |dir: &[u8]| {
            let at = |name: &str| {
                let mut p = dir.to_vec();
                p.extend_from_slice(name.as_bytes());
                PathBuf::from(OsString::from_vec(p))
            };
            ResultFiles {
                stdout: at("stdout"),
                stderr: at("stderr"),
                seq: at("seq"),
            }
        };
        let Some(template) = &self.template else {
            let mut path = self.dir.clone().into_bytes();
            for i in self.column_order(args.len()) {
                path.push(b'/');
                path.extend_from_slice(self.name(i).as_bytes());
                path.push(b'/');
                let mut value = escape(&args[i]).into_bytes();
                value.truncate(NAME_MAX);
                path.extend_from_slice(&value);
            }
            path.push(b'/');
            return in_dir(&path);
        };
        let out = template.argv(&Fill { args, seq, slot }).join(" ");
        if out.ends_with('/') {
            return in_dir(out.as_bytes());
        }
        ResultFiles {
            stdout: PathBuf::from(&out),
            stderr: PathBuf::from(format!("{out}.err")),
            seq: PathBuf::from(format!("{out}.seq")),
        }
    }

    fn name(&self, column: usize) -> String {
        self.names
            .get(column)
            .cloned()
            .unwrap_or_else(|| (column + 1).to_string())
    }

    /// GNU's order of the columns: by their names, numerically (as Perl's
    /// `<=>`: a leading number, else 0), then as text.
    fn column_order(&self, columns: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..columns).collect();
        if !self.names.is_empty() {
            let number = |s: &str| {
                let end = s
                    .char_indices()
                    .find(|&(i, c)| !(c.is_ascii_digit() || (c == '.' && i > 0)))
                    .map_or(s.len(), |(i, _)| i);
                s[..end].parse::<f64>().unwrap_or(0.0)
            };
            order.sort_by(|&a, &b| {
                let (a, b) = (self.name(a), self.name(b));
                number(&a).total_cmp(&number(&b)).then(a.cmp(&b))
            });
        }
        order
    }
}

/// An argument as a folder name: `\` `TAB` NUL `/` as `\\` `\t` `\0` `\_`.
fn escape(arg: &str) -> String {
    arg.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\0', "\\0")
        .replace('/', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(dir: &str, names: &[&str]) -> Results {
        let template = Template::parse(&[dir.to_string()]).unwrap();
        Results::new(dir, template, names.iter().map(|s| s.to_string()).collect())
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_plain_dir_is_named_after_the_arguments() {
        let f = results("out", &[]).files(&args(&["a/b", "x\ty\\"]), 3, 1);
        assert_eq!(f.stdout, PathBuf::from("out/1/a\\_b/2/x\\ty\\\\/stdout"));
        assert_eq!(f.seq, PathBuf::from("out/1/a\\_b/2/x\\ty\\\\/seq"));
        // Header names, in GNU's order.
        let f = results("out", &["y", "x"]).files(&args(&["1", "a"]), 1, 1);
        assert_eq!(f.stderr, PathBuf::from("out/x/a/y/1/stderr"));
        let long = "z".repeat(300);
        let f = results("out", &[]).files(&args(&[&long]), 1, 1);
        assert_eq!(
            f.stdout,
            PathBuf::from(format!("out/1/{}/stdout", &long[..255]))
        );
    }

    #[test]
    fn a_dir_with_replacement_strings_is_filled_in() {
        let f = results("out/{1}/", &[]).files(&args(&["a b"]), 2, 1);
        assert_eq!(f.stdout, PathBuf::from("out/a b/stdout"));
        let f = results("out/{}.txt", &[]).files(&args(&["c"]), 2, 1);
        assert_eq!(
            (f.stdout, f.stderr, f.seq),
            (
                PathBuf::from("out/c.txt"),
                PathBuf::from("out/c.txt.err"),
                PathBuf::from("out/c.txt.seq")
            )
        );
    }
}
