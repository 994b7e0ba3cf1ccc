//! GNU parallel's replacement strings for `drover exec`: `{}` `{.}` `{/}`
//! `{//}` `{/.}` `{#}` `{%}` and `{n}` `{n.}` `{n/}` `{n//}` `{n/.}` for the
//! n-th input source. A command with none of them gets the arguments
//! appended, one per input source.
//!
//! What GNU parallel would fill but drover cannot (`{= perl =}`, `{-1}`,
//! `{0}`, `{1#}`) is refused, never passed on as text; braces GNU leaves
//! alone (`awk '{print $1}'`, `${HOME}`, `{a,b}`, `{+/}` without `--plus`)
//! stay text here too.

use std::fmt;

/// How a replacement string transforms an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// `{}`: as is.
    Whole,
    /// `{.}`: without its extension.
    NoExt,
    /// `{/}`: basename.
    Base,
    /// `{//}`: dirname.
    Dir,
    /// `{/.}`: basename without extension.
    BaseNoExt,
    /// `--plus`: `{+/}` the folder part (empty without one), `{+.}` the
    /// extension (after the last dot), `{+..}` `{+...}` the last two or
    /// three extensions, `{..}` `{...}` without them, `{/..}` `{/...}` the
    /// basename without them.
    PlusDir,
    PlusExt,
    PlusExts(usize),
    NoExts(usize),
    BaseNoExts(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// An argument: all of them (joined by a space) or the n-th (1-based).
    Arg(Option<usize>, Transform),
    /// `{#}`: the job's sequence number.
    Seq,
    /// `{%}`: the job slot number.
    Slot,
    /// `--plus`: `{##}`, the number of jobs.
    Total,
    /// `--plus`: `{0#}`, the job number zero-padded to the width of the
    /// number of jobs.
    SeqPadded,
    /// `--plus`: `{0%}`, the slot number zero-padded to the width of the
    /// number of slots.
    SlotPadded,
}

/// A command line with replacement strings.
#[derive(Debug, Clone)]
pub struct Template {
    tokens: Vec<Vec<Piece>>,
    /// No replacement string anywhere: arguments are appended.
    append: bool,
    /// GNU parallel's context replace (-X, -N, -L): a run of text around
    /// `{}` (up to white space) is repeated for each argument (`x{}y`:
    /// `xay xby`), where otherwise `{}` is all of them (`xa by`).
    context: bool,
    /// `--plus`'s `{##}` `{0#}` `{0%}`: the number of jobs and of slots.
    counts: Counts,
}

/// What `{##}`, `{0#}` and `{0%}` need to know of the whole run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    pub jobs: u64,
    pub slots: usize,
}

/// A replacement string GNU parallel would fill that drover does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// `{= perl expression =}` or `{=N perl expression =}`.
    Perl(String),
    /// `{-1}`, `{0}`, `{1#}`, `{2%}`: the string and the drover form to use.
    Unsupported {
        string: String,
        instead: &'static str,
    },
}

impl TemplateError {
    /// What is wrong, naming the string.
    pub fn message(&self) -> String {
        match self {
            Self::Perl(expr) => format!(
                "{expr} is a GNU parallel perl expression; drover does not run perl expressions"
            ),
            Self::Unsupported { string, .. } => format!(
                "{string} is a GNU parallel replacement string that drover does not support"
            ),
        }
    }

    /// What to write instead.
    pub fn help(&self) -> String {
        match self {
            Self::Perl(expr) => {
                let general = "use {.} {/} {//} {/.} (with a source number: {2.} ...), or a shell command that runs sed on the item";
                match nearest_for_perl(expr) {
                    Some(form) => format!("here {form} comes nearest; in general {general}"),
                    None => general.to_string(),
                }
            }
            Self::Unsupported { instead, .. } => instead.to_string(),
        }
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.message(), self.help())
    }
}

impl std::error::Error for TemplateError {}

/// The drover string closest to a perl expression, for the usual ones:
/// GNU's own definitions of `{.}` `{/}` `{//}` `{/.}` and deletions of an
/// extension or a folder (`s/\.gz$//`, `s:.*/::`).
fn nearest_for_perl(expr: &str) -> Option<String> {
    let inner = expr.strip_prefix("{=")?.strip_suffix("=}")?;
    let digits = inner.chars().take_while(char::is_ascii_digit).count();
    let (source, code) = inner.split_at(digits);
    let code = code.trim().trim_end_matches(';').trim();
    let mut base = false;
    let mut no_ext = false;
    let mut dir = false;
    for part in code.split(';').map(str::trim) {
        // s<d>PATTERN<d><d>: a deletion.
        let mut chars = part.chars();
        let (Some('s'), Some(d)) = (chars.next(), chars.next()) else {
            return None;
        };
        let rest: Vec<&str> = chars.as_str().split(d).collect();
        let [pattern, "", flags] = rest.as_slice() else {
            return None;
        };
        if !flags.chars().all(|c| c.is_ascii_alphabetic()) {
            return None;
        }
        let pattern = pattern.trim_start_matches('^');
        if matches!(pattern, ".*/" | ".*\\/") {
            base = true;
        } else if pattern.starts_with("\\.") && pattern.ends_with('$') {
            no_ext = true;
        } else if matches!(pattern, "/[^/]*$" | "\\/[^\\/]*$" | "/[^/]+$") {
            dir = true;
        } else {
            return None;
        }
    }
    let op = match (base, no_ext, dir) {
        (true, false, false) => "/",
        (false, true, false) => ".",
        (true, true, false) => "/.",
        (false, false, true) => "//",
        _ => return None,
    };
    Some(format!("{{{source}{op}}}"))
}

/// Values for one job.
pub struct Fill<'a> {
    pub args: &'a [String],
    pub seq: u64,
    pub slot: usize,
}

impl Template {
    pub fn parse(tokens: &[String]) -> Result<Self, TemplateError> {
        Self::parse_with(tokens, None, &[])
    }

    /// [`Template::parse`] with `replace` standing for the whole argument
    /// instead of `{}` (GNU parallel's `-I STR`; `{}` is then text), and
    /// `names` naming the arguments (`--header :`: `{name}` is `{n}` of the
    /// n-th name, with `.` `/` `//` `/.` as after a number).
    pub fn parse_with(
        tokens: &[String],
        replace: Option<&str>,
        names: &[String],
    ) -> Result<Self, TemplateError> {
        Self::parse_gnu(tokens, replace, names, false)
    }

    /// [`Template::parse_with`], with `--plus`'s replacement strings when
    /// `plus`.
    pub fn parse_gnu(
        tokens: &[String],
        replace: Option<&str>,
        names: &[String],
        plus: bool,
    ) -> Result<Self, TemplateError> {
        if let Some(expr) = perl_expression(tokens) {
            return Err(TemplateError::Perl(expr));
        }
        let tokens: Vec<Vec<Piece>> = tokens
            .iter()
            .map(|t| match replace.filter(|r| !r.is_empty() && *r != "{}") {
                None => parse_token(t, names, plus),
                Some(r) => {
                    let mut pieces = Vec::new();
                    for (i, part) in t.split(r).enumerate() {
                        if i > 0 {
                            pieces.push(Piece::Arg(None, Transform::Whole));
                        }
                        if part.is_empty() {
                            continue;
                        }
                        // `{}` is text now; the other strings keep their meaning.
                        pieces.extend(parse_token(part, names, plus)?.into_iter().map(
                            |p| match p {
                                Piece::Arg(None, Transform::Whole) => Piece::Text("{}".into()),
                                p => p,
                            },
                        ));
                    }
                    if pieces.is_empty() {
                        pieces.push(Piece::Text(String::new()));
                    }
                    Ok(pieces)
                }
            })
            .collect::<Result<_, _>>()?;
        let append = !tokens
            .iter()
            .flatten()
            .any(|p| !matches!(p, Piece::Text(_)));
        Ok(Self {
            tokens,
            append,
            context: false,
            counts: Counts::default(),
        })
    }

    /// Whether `{##}` or `{0#}` is used: the number of jobs must be known
    /// before the first starts.
    pub fn needs_total(&self) -> bool {
        self.tokens
            .iter()
            .flatten()
            .any(|p| matches!(p, Piece::Total | Piece::SeqPadded))
    }

    fn how(&self, quote: bool) -> How {
        How {
            quote,
            counts: self.counts,
        }
    }

    /// The number of jobs and of slots, for `{##}` `{0#}` `{0%}`.
    pub fn set_counts(&mut self, counts: Counts) {
        self.counts = counts;
    }

    /// Repeats the text around `{}` for each argument (GNU's -X, -N, -L).
    pub fn set_context(&mut self, context: bool) {
        self.context = context;
    }

    /// Whether the command line has a replacement string (else the item is
    /// appended).
    pub fn has_replacements(&self) -> bool {
        !self.append
    }

    /// The highest input source a `{n}` names (0 if none).
    pub fn max_source(&self) -> usize {
        self.tokens
            .iter()
            .flatten()
            .filter_map(|p| match p {
                Piece::Arg(Some(n), _) => Some(*n),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }

    /// argv for one job: replacement strings filled, nothing quoted.
    pub fn argv(&self, fill: &Fill<'_>) -> Vec<String> {
        let mut argv: Vec<String> = Vec::with_capacity(self.tokens.len() + fill.args.len());
        for token in &self.tokens {
            if self.context && repeats(token) {
                // One word per argument, as the shell splits GNU's line;
                // a word with white space in it stays one word.
                match token.iter().any(has_space) {
                    false => argv.extend(
                        each_arg(fill).map(|a| render_one(token, fill, a, self.how(false))),
                    ),
                    true => argv.push(render_context(token, fill, self.how(false))),
                }
                continue;
            }
            // A word that is just `{}` stays one argument per input source,
            // as the separate shell words GNU parallel makes of it.
            match token.as_slice() {
                [Piece::Arg(None, t)] => argv.extend(fill.args.iter().map(|a| transform(a, *t))),
                // A word that is just an argument this job lacks (-N, a
                // short last group, a missing column) is left out, as GNU.
                [Piece::Arg(Some(n), _)] if *n > fill.args.len() => {}
                _ => argv.push(render(token, fill, self.how(false))),
            }
        }
        if self.append {
            argv.extend(fill.args.iter().cloned());
        }
        argv
    }

    /// A shell command line for one job: tokens joined by spaces as written,
    /// the arguments shell-quoted, as GNU parallel composes it.
    pub fn shell_line(&self, fill: &Fill<'_>) -> String {
        let mut words: Vec<String> = self
            .tokens
            .iter()
            .filter(|t| !matches!(t.as_slice(), [Piece::Arg(Some(n), _)] if *n > fill.args.len()))
            .map(|t| match self.context && repeats(t) {
                true => render_context(t, fill, self.how(true)),
                false => render(t, fill, self.how(true)),
            })
            .collect();
        if self.append {
            words.extend(fill.args.iter().map(|a| shell_quote(a)));
        }
        words.join(" ")
    }
}

/// A replacement string as GNU parallel counts it for a line's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expr {
    Arg(Option<usize>, Transform),
    Seq,
    Slot,
}

/// GNU parallel's measure of a command line's length (its
/// `CommandLine::len`), which decides how many arguments -X, -m and
/// --xargs put on one line: the text of the command, and for each
/// replacement string the shell-quoted values it stands for, times the
/// times it is used.
#[derive(Debug, Clone)]
pub struct LineCost {
    /// The text outside context groups, and a space between words.
    base: usize,
    /// The text of the context groups around replacement strings.
    context: usize,
    groups: usize,
    /// Each distinct replacement string and how often it is used.
    exprs: Vec<(Expr, usize)>,
    context_mode: bool,
    /// Values are counted shell-quoted (not with -q, nor when the command
    /// starts with a replacement string, as GNU's).
    quote: bool,
    /// -q: GNU counts the whole line three times over.
    times: usize,
}

impl LineCost {
    /// What one record (the arguments of one input line) adds to each
    /// replacement string's length; `seq` is the line's job number.
    pub fn record_lens(&self, record: &[String], seq: u64) -> Vec<usize> {
        let q = |value: String| match self.quote {
            true => shell_quote(&value).len(),
            false => value.len(),
        };
        self.exprs
            .iter()
            .map(|(expr, _)| match *expr {
                // Positional: the record's own column, as GNU's push.
                Expr::Arg(Some(n), t) => record.get(n - 1).map_or(0, |a| q(transform(a, t))),
                Expr::Arg(None, t) => record.iter().map(|a| q(transform(a, t))).sum(),
                Expr::Seq if !record.is_empty() => seq.to_string().len(),
                // GNU counts the slot the line will get: one digit below 10.
                Expr::Slot if !record.is_empty() => 1,
                Expr::Seq | Expr::Slot => 0,
            })
            .collect()
    }

    /// The line's length with `records` records of `per_record` arguments
    /// each, `lens` the sums of [`LineCost::record_lens`].
    pub fn len(&self, lens: &[usize], records: usize, per_record: usize) -> usize {
        let args = records * per_record;
        let mut len = self.base;
        if self.context_mode {
            len += args * self.context;
            len += lens
                .iter()
                .zip(&self.exprs)
                .map(|(l, (_, count))| l * count)
                .sum::<usize>();
            len += args.saturating_sub(1) * self.groups;
        } else {
            len += self.context;
            len += lens
                .iter()
                .zip(&self.exprs)
                .map(|(l, (_, count))| (args.saturating_sub(1) + l) * count)
                .sum::<usize>();
        }
        len * self.times
    }

    /// How many distinct replacement strings there are.
    pub fn exprs(&self) -> usize {
        self.exprs.len()
    }
}

impl Template {
    /// GNU parallel's length measure of this command (`quoting`: -q).
    pub fn line_cost(&self, quoting: bool) -> LineCost {
        let mut exprs: Vec<(Expr, usize)> = Vec::new();
        let mut count = |e: Expr| match exprs.iter_mut().find(|(x, _)| *x == e) {
            Some((_, n)) => *n += 1,
            None => exprs.push((e, 1)),
        };
        let (mut noncontext, mut context, mut groups) = (0, 0, 0);
        for token in &self.tokens {
            // Replacement strings as NUL, then runs without white space.
            let mut word = String::new();
            for piece in token {
                match piece {
                    Piece::Text(t) => word.push_str(t),
                    Piece::Arg(n, t) => {
                        count(Expr::Arg(*n, *t));
                        word.push('\0');
                    }
                    Piece::Seq | Piece::SeqPadded | Piece::Total => {
                        count(Expr::Seq);
                        word.push('\0');
                    }
                    Piece::Slot | Piece::SlotPadded => {
                        count(Expr::Slot);
                        word.push('\0');
                    }
                }
            }
            let space = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c');
            noncontext += word.chars().filter(|&c| space(c)).count();
            for run in word.split(space) {
                let marks = run.matches('\0').count();
                if marks > 0 {
                    context += run.len() - marks;
                    groups += 1;
                } else {
                    noncontext += run.len();
                }
            }
        }
        let mut words = self.tokens.len();
        if self.append {
            // GNU appends a word `{}`.
            count(Expr::Arg(None, Transform::Whole));
            words += 1;
            groups += 1;
        }
        // A command that starts with a replacement string is not quoted.
        let starts_with_one = self.tokens.first().is_some_and(|t| {
            let lead = match t.first() {
                Some(Piece::Text(text)) => text,
                _ => "",
            };
            !lead.contains([' ', '\t', '\n', '=']) && t.len() > usize::from(!lead.is_empty())
        });
        LineCost {
            base: noncontext + words.saturating_sub(1),
            context,
            groups,
            exprs,
            context_mode: self.context,
            quote: !quoting && !starts_with_one,
            times: if quoting { 3 } else { 1 },
        }
    }
}

/// The first `{= ... =}` in the command, as GNU parallel finds it: the
/// words are joined first, so that one may span several of them.
fn perl_expression(tokens: &[String]) -> Option<String> {
    let line = tokens.join(" ");
    let open = line.find("{=")?;
    // `{=}` is text: the two ends may not share the `=`.
    let close = line[open + 2..].find("=}")? + open + 2;
    Some(line[open..close + 2].to_string())
}

fn parse_token(token: &str, names: &[String], plus: bool) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = token;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let parsed = after
            .find('}')
            .map(|close| replacement(&after[..close], names, plus).map(|p| p.map(|p| (p, close))))
            .transpose()?
            .flatten();
        match parsed {
            Some((piece, close)) => {
                text.push_str(&rest[..open]);
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(piece);
                rest = &after[close + 1..];
            }
            None => {
                text.push_str(&rest[..open + 1]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// `{name}` (or `{name.}` `{name/}` `{name//}` `{name/.}`) of a header's
/// column `name`.
fn named(inner: &str, names: &[String]) -> Option<Piece> {
    for (op, transform) in [
        ("", Transform::Whole),
        ("/.", Transform::BaseNoExt),
        ("//", Transform::Dir),
        (".", Transform::NoExt),
        ("/", Transform::Base),
    ] {
        let Some(name) = inner.strip_suffix(op) else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| n == name) {
            return Some(Piece::Arg(Some(i + 1), transform));
        }
    }
    None
}

/// The replacement string inside `{...}`, if it is one. As GNU parallel, a
/// source number may be negative and be followed by white space (`{1 .}`).
fn replacement(inner: &str, names: &[String], plus: bool) -> Result<Option<Piece>, TemplateError> {
    if let Some(piece) = named(inner, names) {
        return Ok(Some(piece));
    }
    if plus {
        match inner {
            "##" => return Ok(Some(Piece::Total)),
            "0#" => return Ok(Some(Piece::SeqPadded)),
            "0%" => return Ok(Some(Piece::SlotPadded)),
            "slot" => return Ok(Some(Piece::Slot)),
            _ => {}
        }
    }
    let unsigned = inner.strip_prefix('-').unwrap_or(inner);
    let digits = unsigned.chars().take_while(char::is_ascii_digit).count();
    let (number, op) = unsigned.split_at(digits);
    let (source, op) = match number {
        // `{-}` `{-x}`: text to GNU too.
        "" if unsigned.len() != inner.len() => return Ok(None),
        "" => (None, op),
        _ => (Some(number), op.trim_start()),
    };
    let transform = match op {
        "" => Transform::Whole,
        "." => Transform::NoExt,
        "/" => Transform::Base,
        "//" => Transform::Dir,
        "/." => Transform::BaseNoExt,
        "+/" if plus => Transform::PlusDir,
        "+." if plus => Transform::PlusExt,
        "+.." if plus => Transform::PlusExts(2),
        "+..." if plus => Transform::PlusExts(3),
        ".." if plus => Transform::NoExts(2),
        "..." if plus => Transform::NoExts(3),
        "/.." if plus => Transform::BaseNoExts(2),
        "/..." if plus => Transform::BaseNoExts(3),
        _ if plus && source.is_none() && plus_unsupported(inner) => {
            return Err(TemplateError::Unsupported {
                string: format!("{{{inner}}}"),
                instead: "--plus's strings that run perl (bash-style {:-x} {#x} {%x} {/x/y} {^x} {,x}, {choose_k}, {uniq}) and name remote hosts are not supported; use {+/} {+.} {..} {/..} {##} {0#} {0%}, or a shell command",
            });
        }
        "#" | "%" if source.is_some() => {
            return Err(TemplateError::Unsupported {
                string: format!("{{{inner}}}"),
                instead: "use {#} (the job number) or {%} (the slot number), without a source number",
            });
        }
        "#" => return Ok(Some(Piece::Seq)),
        "%" => return Ok(Some(Piece::Slot)),
        _ => return Ok(None),
    };
    let Some(number) = source else {
        return Ok(Some(Piece::Arg(None, transform)));
    };
    let unsupported = |instead| {
        Err(TemplateError::Unsupported {
            string: format!("{{{inner}}}"),
            instead,
        })
    };
    if unsigned.len() != inner.len() {
        return unsupported(
            "it counts input sources from the end; write the source's number from the start, e.g. {2}",
        );
    }
    match number.parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(Piece::Arg(Some(n), transform))),
        Ok(_) => unsupported(
            "input sources are numbered from 1; for all of them use {} (or {.} {/} ...)",
        ),
        Err(_) => unsupported("that input source number is too large"),
    }
}

fn render(pieces: &[Piece], fill: &Fill<'_>, how: How) -> String {
    let quote = how.quote;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Seq => out.push_str(&fill.seq.to_string()),
            Piece::Slot => out.push_str(&fill.slot.to_string()),
            Piece::Total | Piece::SeqPadded | Piece::SlotPadded => {
                out.push_str(&counted(piece, fill, how.counts));
            }
            Piece::Arg(None, t) => {
                let values: Vec<String> = fill.args.iter().map(|a| transform(a, *t)).collect();
                if quote {
                    out.push_str(
                        &values
                            .iter()
                            .map(|v| shell_quote(v))
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                } else {
                    out.push_str(&values.join(" "));
                }
            }
            Piece::Arg(Some(n), t) => {
                let value = fill
                    .args
                    .get(n - 1)
                    .map(|a| transform(a, *t))
                    .unwrap_or_default();
                if quote {
                    out.push_str(&shell_quote(&value));
                } else {
                    out.push_str(&value);
                }
            }
        }
    }
    out
}

/// GNU's --plus strings drover does not fill (they run perl).
fn plus_unsupported(inner: &str) -> bool {
    matches!(
        inner,
        "choose_k" | "uniq" | "host" | "sshlogin" | "hgrp" | "agrp"
    ) || (inner.len() > 1
        && (inner.starts_with([':', '#', '%', '^', ','])
            || (inner.starts_with('/') && inner[1..].contains('/'))
            || inner.starts_with("/#")
            || inner.starts_with("/%")))
}

/// How pieces are rendered: quoted for a shell, and the run's counts.
#[derive(Clone, Copy)]
struct How {
    quote: bool,
    counts: Counts,
}

/// Whether a word has `{}` (or `{.}` ...) in it, which context replace
/// repeats for each argument.
fn repeats(token: &[Piece]) -> bool {
    token.iter().any(|p| matches!(p, Piece::Arg(None, _)))
}

fn has_space(piece: &Piece) -> bool {
    matches!(piece, Piece::Text(t) if t.contains([' ', '\t']))
}

/// The arguments a context group is repeated for: none is one empty one,
/// as GNU's.
fn each_arg<'a>(fill: &'a Fill<'_>) -> impl Iterator<Item = &'a str> {
    let empty: &[&str] = if fill.args.is_empty() { &[""] } else { &[] };
    fill.args
        .iter()
        .map(String::as_str)
        .chain(empty.iter().copied())
}

/// A context group with `{}` standing for `arg` alone; `{1}` `{#}` ... as
/// anywhere.
fn render_one(pieces: &[Piece], fill: &Fill<'_>, arg: &str, how: How) -> String {
    let quote = how.quote;
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Arg(None, t) => {
                let value = transform(arg, *t);
                match quote {
                    true => out.push_str(&shell_quote(&value)),
                    false => out.push_str(&value),
                }
            }
            other => out.push_str(&render(std::slice::from_ref(other), fill, how)),
        }
    }
    out
}

/// A word in context mode: each run of text without white space that has
/// `{}` in it is repeated for each argument (joined by spaces), as GNU
/// parallel's context groups; the rest once.
fn render_context(token: &[Piece], fill: &Fill<'_>, how: How) -> String {
    let mut out = String::new();
    let mut group: Vec<Piece> = Vec::new();
    let flush = |group: &mut Vec<Piece>, out: &mut String| {
        if repeats(group) {
            let words: Vec<String> = each_arg(fill)
                .map(|a| render_one(group, fill, a, how))
                .collect();
            out.push_str(&words.join(" "));
        } else {
            out.push_str(&render(group, fill, how));
        }
        group.clear();
    };
    for piece in token {
        let Piece::Text(text) = piece else {
            group.push(piece.clone());
            continue;
        };
        let mut rest = text.as_str();
        while let Some(at) = rest.find([' ', '\t']) {
            if at > 0 {
                group.push(Piece::Text(rest[..at].to_string()));
            }
            flush(&mut group, &mut out);
            out.push_str(&rest[at..at + 1]);
            rest = &rest[at + 1..];
        }
        if !rest.is_empty() {
            group.push(Piece::Text(rest.to_string()));
        }
    }
    flush(&mut group, &mut out);
    out
}

/// GNU parallel's path transforms.
pub fn transform(arg: &str, t: Transform) -> String {
    match t {
        Transform::Whole => arg.to_string(),
        Transform::NoExt => no_ext(arg).to_string(),
        Transform::Base => base(arg).to_string(),
        Transform::Dir => dir(arg).to_string(),
        Transform::BaseNoExt => no_ext(base(arg)).to_string(),
        Transform::PlusDir => arg.rfind('/').map_or("", |i| &arg[..i]).to_string(),
        Transform::PlusExt => arg.rfind('.').map_or("", |i| &arg[i + 1..]).to_string(),
        Transform::PlusExts(n) => match last_exts(arg, n) {
            Some(at) => arg[at + 1..].to_string(),
            None => String::new(),
        },
        Transform::NoExts(n) => arg[..last_exts(arg, n).unwrap_or(arg.len())].to_string(),
        Transform::BaseNoExts(n) => {
            let b = base(arg);
            b[..last_exts(b, n).unwrap_or(b.len())].to_string()
        }
    }
}

/// Where the last `n` extensions of the last path component start (the
/// dot before them), if it has that many, as GNU's `\.[^/.]*` x n `$`.
fn last_exts(arg: &str, n: usize) -> Option<usize> {
    let start = arg.rfind('/').map_or(0, |i| i + 1);
    arg[start..]
        .rmatch_indices('.')
        .nth(n - 1)
        .map(|(i, _)| start + i)
}

/// `{##}`, `{0#}`, `{0%}`: the number of jobs, or a number zero-padded to
/// the width GNU gives it (1 + int(log10 of the count), in floating point
/// as GNU's perl has it).
fn counted(piece: &Piece, fill: &Fill<'_>, counts: Counts) -> String {
    let width = |n: f64| 1 + (n.max(1.0).ln() / 10f64.ln()) as usize;
    match piece {
        Piece::Total => counts.jobs.to_string(),
        Piece::SeqPadded => format!("{:0w$}", fill.seq, w = width(counts.jobs as f64)),
        Piece::SlotPadded => format!("{:0w$}", fill.slot, w = width(counts.slots as f64)),
        _ => String::new(),
    }
}

fn base(arg: &str) -> &str {
    match arg.rfind('/') {
        Some(i) => &arg[i + 1..],
        None => arg,
    }
}

/// POSIX/Perl dirname: trailing slashes do not count; no slash gives `.`.
fn dir(arg: &str) -> &str {
    let trimmed = arg.trim_end_matches('/');
    if trimmed.is_empty() {
        return if arg.is_empty() { "." } else { "/" };
    }
    match trimmed.rfind('/') {
        None => ".",
        Some(i) => {
            let parent = trimmed[..i].trim_end_matches('/');
            if parent.is_empty() { "/" } else { parent }
        }
    }
}

/// Removes the last extension, if the last path component has one.
fn no_ext(arg: &str) -> &str {
    let start = arg.rfind('/').map_or(0, |i| i + 1);
    match arg[start..].rfind('.') {
        Some(dot) => &arg[..start + dot],
        None => arg,
    }
}

/// Quotes `s` for /bin/sh exactly as GNU parallel does: `[-_.+a-zA-Z0-9/]`
/// stays bare, `''` for empty, else single quotes with `'` as `'"'"'`.
pub fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".to_string();
    }
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.+/".contains(&b))
    {
        return s.to_string();
    }
    let quoted = format!("'{}'", s.replace('\'', "'\"'\"'"));
    let quoted = quoted.strip_prefix("''").unwrap_or(&quoted);
    let quoted = quoted.strip_suffix("''").unwrap_or(quoted);
    quoted.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn argv(tokens: &[&str], a: &[&str]) -> Vec<String> {
        let a = args(a);
        Template::parse(&args(tokens)).unwrap().argv(&Fill {
            args: &a,
            seq: 7,
            slot: 2,
        })
    }

    #[test]
    fn path_transforms() {
        let item = "dir/sub/file.tar.gz";
        assert_eq!(transform(item, Transform::NoExt), "dir/sub/file.tar");
        assert_eq!(transform(item, Transform::Base), "file.tar.gz");
        assert_eq!(transform(item, Transform::Dir), "dir/sub");
        assert_eq!(transform(item, Transform::BaseNoExt), "file.tar");
        assert_eq!(transform("file", Transform::Dir), ".");
        assert_eq!(transform("dir.d/file", Transform::NoExt), "dir.d/file");
        assert_eq!(transform("/x.y", Transform::Dir), "/");
        for (item, dirname) in [
            ("dir/", "."),
            ("dir//", "."),
            ("//x", "/"),
            ("a//b", "a"),
            ("/", "/"),
            ("", "."),
            ("../z", ".."),
        ] {
            assert_eq!(transform(item, Transform::Dir), dirname, "{item}");
        }
        assert_eq!(transform(".hidden", Transform::NoExt), "");
        assert_eq!(transform("x.", Transform::NoExt), "x");
    }

    #[test]
    fn replacement_strings_fill_argv() {
        assert_eq!(
            argv(&["echo", "{}", "{#}", "{%}"], &["a"]),
            ["echo", "a", "7", "2"]
        );
        assert_eq!(
            argv(&["cp", "{1}", "{2/.}.bak"], &["x", "d/y.txt"]),
            ["cp", "x", "y.bak"]
        );
        assert_eq!(argv(&["echo", "{}"], &["a", "b"]), ["echo", "a", "b"]);
        assert_eq!(argv(&["echo", "[{}]"], &["a", "b"]), ["echo", "[a b]"]);
        assert_eq!(
            argv(&["echo", "pre-{.}-post"], &["f.c"]),
            ["echo", "pre-f-post"]
        );
    }

    #[test]
    fn quoting_matches_gnu_parallel() {
        for (raw, quoted) in [
            ("a", "a"),
            ("a b", "'a b'"),
            ("it's", r#"'it'"'"'s'"#),
            ("'a'", r#""'"'a'"'""#),
            ("'", r#""'""#),
            ("", "''"),
            ("-n", "-n"),
            ("a=b", "'a=b'"),
            ("@:%+-_./", "'@:%+-_./'"),
        ] {
            assert_eq!(shell_quote(raw), quoted, "{raw}");
        }
    }

    #[test]
    fn bare_braces_keep_sources_apart() {
        assert_eq!(
            argv(&["printf", "[%s]", "{}"], &["a", "b c"]),
            ["printf", "[%s]", "a", "b c"]
        );
    }

    #[test]
    fn no_replacement_string_appends_arguments() {
        assert_eq!(
            argv(&["grep", "-c", "x"], &["f1", "f2"]),
            ["grep", "-c", "x", "f1", "f2"]
        );
    }

    #[test]
    fn other_braces_are_text() {
        assert_eq!(
            argv(&["awk", "{print $1}", "{}"], &["f"]),
            ["awk", "{print $1}", "f"]
        );
        assert_eq!(argv(&["echo", "{x}"], &["f"]), ["echo", "{x}", "f"]);
    }

    fn refused(tokens: &[&str]) -> TemplateError {
        Template::parse(&args(tokens)).expect_err("refused")
    }

    #[test]
    fn perl_expressions_are_refused_with_the_nearest_form() {
        for (tokens, expr, nearest) in [
            (&["echo", "{= s/b/B/ =}"][..], "{= s/b/B/ =}", None),
            (&["echo", "{=", "s/b/B/", "=}"], "{= s/b/B/ =}", None),
            (&["echo {==}"], "{==}", None),
            (&["x{=y=}z"], "{=y=}", None),
            (
                &["echo", "{= s/\\.gz$// =}"],
                "{= s/\\.gz$// =}",
                Some("{.}"),
            ),
            (&["echo", "{=2 s:.*/:: =}"], "{=2 s:.*/:: =}", Some("{2/}")),
            (
                &["echo", "{= s:.*/::; s:\\.[^/.]*$::; =}"],
                "{= s:.*/::; s:\\.[^/.]*$::; =}",
                Some("{/.}"),
            ),
            (
                &["echo", "{=s:/[^/]*$::=}"],
                "{=s:/[^/]*$::=}",
                Some("{//}"),
            ),
        ] {
            let e = refused(tokens);
            assert_eq!(e, TemplateError::Perl(expr.to_string()), "{tokens:?}");
            let help = e.help();
            match nearest {
                Some(form) => assert!(
                    help.starts_with(&format!("here {form} comes nearest")),
                    "{help}"
                ),
                None => assert!(!help.contains("nearest"), "{help}"),
            }
            assert!(e.to_string().contains(expr));
        }
    }

    #[test]
    fn gnu_only_replacement_strings_are_refused() {
        for s in [
            "{-1}", "{-2.}", "{0}", "{0/}", "{00}", "{1#}", "{2%}", "{1 #}",
        ] {
            let e = refused(&["echo", &format!("x{s}y")]);
            assert!(
                matches!(&e, TemplateError::Unsupported { string, .. } if string == s),
                "{s}: {e:?}"
            );
        }
    }

    #[test]
    fn braces_gnu_leaves_alone_stay_text() {
        for t in [
            "{=}",
            "{= s/b/B/",
            "=}",
            "{1= }",
            "{ 1}",
            "{#1}",
            "{+/}",
            "{..}",
            "{##}",
            "{choose_k}",
            "{-}",
            "{+1}",
            "${HOME}",
            "{a,b}",
            "{1..3}",
        ] {
            assert_eq!(argv(&["echo", t], &["f"]), ["echo", t, "f"], "{t}");
        }
    }

    #[test]
    fn source_numbers_may_be_followed_by_white_space() {
        assert_eq!(
            argv(&["echo", "{2 .}", "{01}"], &["a", "b.c"]),
            ["echo", "b", "a"]
        );
    }

    #[test]
    fn shell_line_quotes_arguments_only() {
        let a = args(&["a b", "it's"]);
        let t = Template::parse(&args(&["echo {1} | tr a-z A-Z;", "echo", "{2}"])).unwrap();
        assert_eq!(
            t.shell_line(&Fill {
                args: &a,
                seq: 1,
                slot: 1
            }),
            r#"echo 'a b' | tr a-z A-Z; echo 'it'"'"'s'"#
        );
    }
}
