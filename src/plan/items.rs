//! Input sources of `drover exec`: `:::` lists, `::::` files, or stdin
//! lines, combined as GNU parallel does: several sources give their
//! cartesian product (the first source varies slowest); a source given with
//! `:::+` or `::::+` is linked to the one before it (taken side by side).
//!
//! One source read from a file or stdin is streamed: a million lines are
//! never held in memory. Several sources are read whole, to be combined.

use std::io::{self, BufRead};
use std::path::PathBuf;

/// Where one input source's items come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    List(Vec<String>),
    File(PathBuf),
    Stdin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub origin: Origin,
    /// Linked to the previous source (`:::+`, `::::+`).
    pub linked: bool,
}

/// Splits `COMMAND [ARG...] [::: ITEM...]... [:::: FILE...]...` into the
/// command and its input sources.
pub fn split_command(tokens: &[String]) -> (Vec<String>, Vec<Source>) {
    let is_sep = |t: &str| matches!(t, ":::" | ":::+" | "::::" | "::::+");
    let end = tokens
        .iter()
        .position(|t| is_sep(t))
        .unwrap_or(tokens.len());
    let command = tokens[..end].to_vec();
    let mut sources: Vec<Source> = Vec::new();
    let mut i = end;
    while i < tokens.len() {
        let sep = tokens[i].as_str();
        let start = i + 1;
        let mut j = start;
        while j < tokens.len() && !is_sep(&tokens[j]) {
            j += 1;
        }
        let group = &tokens[start..j];
        let linked = sep.ends_with('+');
        if sep.starts_with("::::") {
            for (k, file) in group.iter().enumerate() {
                let origin = if file == "-" {
                    Origin::Stdin
                } else {
                    Origin::File(PathBuf::from(file))
                };
                sources.push(Source {
                    origin,
                    linked: linked && k == 0,
                });
            }
        } else {
            sources.push(Source {
                origin: Origin::List(group.to_vec()),
                linked,
            });
        }
        i = j;
    }
    (command, sources)
}

/// Reads items the way GNU parallel takes them: one per line, without the
/// line ending (a CR before the LF too), or ended by `separator` (`-0`,
/// `-d`), taken as it is.
fn items(reader: impl BufRead, separator: u8) -> impl Iterator<Item = io::Result<String>> {
    reader.split(separator).map(move |item| {
        item.map(|mut bytes| {
            if separator == b'\n' && bytes.last() == Some(&b'\r') {
                bytes.pop();
            }
            String::from_utf8(bytes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        })
    })
}

fn open(origin: &Origin, separator: u8) -> io::Result<Items> {
    Ok(match origin {
        Origin::List(items) => Box::new(items.clone().into_iter().map(Ok)),
        Origin::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
            })?;
            Box::new(self::items(
                io::BufReader::with_capacity(64 * 1024, file),
                separator,
            ))
        }
        Origin::Stdin => Box::new(self::items(
            io::BufReader::with_capacity(64 * 1024, io::stdin()),
            separator,
        )),
    })
}

/// GNU parallel's line continuation (-L): an item ending in white space is
/// joined with the next; the last is kept as it is.
fn continue_lines(mut items: Items) -> Items {
    Box::new(std::iter::from_fn(move || {
        let mut joined: Option<String> = None;
        loop {
            match items.next() {
                None => return joined.map(Ok),
                Some(Err(e)) => return Some(Err(e)),
                Some(Ok(item)) => {
                    let item = match joined.take() {
                        Some(mut before) => {
                            before.push_str(&item);
                            before
                        }
                        None => item,
                    };
                    if item.ends_with(|c: char| c.is_ascii_whitespace() || c == '\x0b') {
                        joined = Some(item);
                    } else {
                        return Some(Ok(item));
                    }
                }
            }
        }
    }))
}

/// One source's items, one after another.
type Items = Box<dyn Iterator<Item = io::Result<String>> + Send>;

/// White space taken off every argument (GNU parallel's `--trim`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Trim {
    #[default]
    None,
    Left,
    Right,
    Both,
}

impl Trim {
    /// `n`, `l`, `r`, `lr` or `rl`, as GNU parallel's `--trim`.
    pub fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "n" => Trim::None,
            "l" => Trim::Left,
            "r" => Trim::Right,
            "lr" | "rl" => Trim::Both,
            _ => return None,
        })
    }

    fn apply(self, item: String) -> String {
        let ws: &[char] = &[' ', '\t'];
        match self {
            Trim::None => item,
            Trim::Left => item.trim_start_matches(ws).to_string(),
            Trim::Right => item.trim_end_matches(ws).to_string(),
            Trim::Both => item.trim_matches(ws).to_string(),
        }
    }
}

/// How the sources are read and combined, beyond `:::` and `:::+`.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    /// `--link`: every source side by side, the shorter ones repeated
    /// from their start to the length of the longest.
    pub link: bool,
    pub trim: Trim,
    /// `--colsep REGEX`: each item is split into columns, which are the
    /// arguments `{1}` `{2}` ... (a record's columns in source order).
    pub colsep: Option<regex::Regex>,
    /// `--shuf`: the jobs in a random order (every input read first).
    pub shuffle: bool,
    /// `--header :`: each source's first item names its arguments.
    pub header: bool,
    /// `-n N` / `-N N`: the arguments of N records make one job's (0: a
    /// job a record, with no arguments).
    pub per_job: Option<usize>,
    /// `-L`, `-l`: an item that ends in white space goes on in the next
    /// (joined as they are), as GNU parallel's line continuation.
    pub continued: bool,
}

/// The argument lists of the jobs, in order. No source: stdin lines (or
/// items ended by `separator`).
pub fn arguments(sources: &[Source], separator: u8) -> io::Result<Rows> {
    arguments_with(sources, separator, Reading::default()).map(|(_, rows)| rows)
}

/// The jobs' argument lists, one after another.
pub type Rows = Box<dyn Iterator<Item = io::Result<Vec<String>>> + Send>;

/// [`arguments`], read as `reading` says; with `header`, also the names of
/// the arguments (each source's first item, split into columns as the
/// rest).
pub fn arguments_with(
    sources: &[Source],
    separator: u8,
    reading: Reading,
) -> io::Result<(Vec<String>, Rows)> {
    let Reading {
        link,
        trim,
        colsep,
        shuffle,
        header,
        per_job,
        continued,
    } = reading;
    let (headers, mut rows) = combine(sources, separator, link, header, continued)?;
    let names: Vec<String> = headers
        .iter()
        .flat_map(|h| match &colsep {
            Some(sep) => sep.split(h).map(|n| trim.apply(n.to_string())).collect(),
            None => vec![trim.apply(h.clone())],
        })
        .collect();
    if shuffle {
        let mut all: Vec<io::Result<Vec<String>>> = rows.collect();
        fastrand::shuffle(&mut all);
        rows = Box::new(all.into_iter());
    }
    let rows = match colsep {
        None => rows,
        Some(sep) => Box::new(rows.map(move |r| {
            r.map(|row| {
                row.iter()
                    .flat_map(|item| sep.split(item).map(str::to_string))
                    .collect()
            })
        })),
    };
    let rows: Rows = match trim {
        Trim::None => rows,
        _ => Box::new(
            rows.map(move |r| r.map(|row| row.into_iter().map(|a| trim.apply(a)).collect())),
        ),
    };
    let rows: Rows = match per_job {
        None | Some(1) => rows,
        Some(0) => Box::new(rows.map(|r| r.map(|_| Vec::new()))),
        Some(n) => Box::new(Grouped { rows, n }),
    };
    Ok((names, rows))
}

/// The arguments of `n` records at a time, as one job's.
struct Grouped {
    rows: Rows,
    n: usize,
}

impl Iterator for Grouped {
    type Item = io::Result<Vec<String>>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut args = Vec::new();
        for _ in 0..self.n {
            match self.rows.next() {
                Some(Ok(row)) => args.extend(row),
                Some(Err(e)) => return Some(Err(e)),
                None => break,
            }
        }
        (!args.is_empty()).then_some(Ok(args))
    }
}

/// Each source's first item, taken as its header (`--header :`).
type Headers = Vec<String>;

fn combine(
    sources: &[Source],
    separator: u8,
    link_all: bool,
    header: bool,
    continued: bool,
) -> io::Result<(Headers, Rows)> {
    let open = |origin: &Origin, separator: u8| {
        open(origin, separator).map(|items| match continued {
            true => continue_lines(items),
            false => items,
        })
    };
    let mut headers = Headers::new();
    // The first item of a source read whole, when it is a header.
    let mut take_header = |items: &mut Vec<String>| {
        if header && !items.is_empty() {
            headers.push(items.remove(0));
        }
    };
    let stdin = [Source {
        origin: Origin::Stdin,
        linked: false,
    }];
    let sources = if sources.is_empty() {
        &stdin[..]
    } else {
        sources
    };
    if let [one] = sources {
        let mut items = open(&one.origin, separator)?;
        if header && let Some(first) = items.next() {
            headers.push(first?);
        }
        let rows: Rows = Box::new(items.map(|r| r.map(|item| vec![item])));
        return Ok((headers, rows));
    }
    if link_all {
        let mut all: Vec<Vec<String>> = Vec::new();
        for source in sources {
            let mut items: Vec<String> =
                open(&source.origin, separator)?.collect::<io::Result<_>>()?;
            take_header(&mut items);
            all.push(items);
        }
        let longest = match all.iter().any(Vec::is_empty) {
            true => 0,
            false => all.iter().map(Vec::len).max().unwrap_or(0),
        };
        let rows: Rows = Box::new((0..longest).map(move |i| {
            Ok(all
                .iter()
                .map(|items| items[i % items.len()].clone())
                .collect())
        }));
        return Ok((headers, rows));
    }
    // Several sources: read each whole, link, then take the product.
    let mut groups: Vec<Vec<Vec<String>>> = Vec::new();
    for source in sources {
        let mut items: Vec<String> = open(&source.origin, separator)?.collect::<io::Result<_>>()?;
        take_header(&mut items);
        // Beside other sources, an empty one is one empty argument (GNU).
        if items.is_empty() && !source.linked {
            items.push(String::new());
        }
        match groups.last_mut() {
            Some(last) if source.linked => *last = link(last, &items),
            _ => groups.push(items.into_iter().map(|i| vec![i]).collect()),
        }
    }
    let rows: Rows = Box::new(Product::new(groups).map(Ok));
    Ok((headers, rows))
}

/// Links a group with the next source side by side; the shorter one decides
/// the length, as GNU parallel's `:::+` does.
fn link(group: &[Vec<String>], items: &[String]) -> Vec<Vec<String>> {
    group
        .iter()
        .zip(items)
        .map(|(row, item)| {
            let mut row = row.clone();
            row.push(item.clone());
            row
        })
        .collect()
}

/// The cartesian product of groups, the first group varying slowest,
/// generated lazily.
struct Product {
    groups: Vec<Vec<Vec<String>>>,
    index: Vec<usize>,
    done: bool,
}

impl Product {
    fn new(groups: Vec<Vec<Vec<String>>>) -> Self {
        let done = groups.iter().any(Vec::is_empty);
        let index = vec![0; groups.len()];
        Self {
            groups,
            index,
            done,
        }
    }
}

impl Iterator for Product {
    type Item = Vec<String>;

    fn next(&mut self) -> Option<Vec<String>> {
        if self.done {
            return None;
        }
        let row: Vec<String> = self
            .groups
            .iter()
            .zip(&self.index)
            .flat_map(|(g, &i)| g[i].iter().cloned())
            .collect();
        // Advance like an odometer, last group fastest.
        let mut k = self.groups.len();
        loop {
            if k == 0 {
                self.done = true;
                break;
            }
            k -= 1;
            self.index[k] += 1;
            if self.index[k] < self.groups[k].len() {
                break;
            }
            self.index[k] = 0;
        }
        Some(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn all(tokens: &[&str]) -> Vec<Vec<String>> {
        let (_, sources) = split_command(&s(tokens));
        arguments(&sources, b'\n')
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn splits_command_and_sources() {
        let (cmd, sources) = split_command(&s(&[
            "echo", "{}", ":::", "a", "b", ":::+", "1", "::::", "f",
        ]));
        assert_eq!(cmd, s(&["echo", "{}"]));
        assert_eq!(sources.len(), 3);
        assert!(sources[1].linked);
        assert_eq!(sources[2].origin, Origin::File("f".into()));
    }

    #[test]
    fn product_first_source_slowest() {
        assert_eq!(
            all(&["echo", ":::", "a", "b", ":::", "1", "2"]),
            vec![
                s(&["a", "1"]),
                s(&["a", "2"]),
                s(&["b", "1"]),
                s(&["b", "2"])
            ]
        );
    }

    #[test]
    fn linked_sources_go_side_by_side() {
        assert_eq!(
            all(&["echo", ":::", "a", "b", "c", ":::+", "1", "2", "3"]),
            vec![s(&["a", "1"]), s(&["b", "2"]), s(&["c", "3"])]
        );
    }

    #[test]
    fn an_empty_source_beside_others_is_one_empty_argument() {
        assert_eq!(all(&["echo", ":::", ":::", "1"]), vec![s(&["", "1"])]);
    }

    #[test]
    fn the_shorter_linked_source_decides() {
        assert_eq!(
            all(&["echo", ":::", "a", "b", "c", ":::+", "1", "2"]),
            vec![s(&["a", "1"]), s(&["b", "2"])]
        );
    }
}
