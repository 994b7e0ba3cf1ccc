//! Several input records on one command line, as GNU parallel's -X, -m,
//! --xargs, -n, -N and -L put them: records are added while the line stays
//! shorter than the longest allowed (measured as GNU parallel measures it,
//! [`LineCost`]) and holds fewer than `max_args`. With -X and -m, when the
//! input ends while a line fills, that line's records are spread over the
//! job slots (ceil(n / -j) a line), once, as GNU's do.

use std::collections::VecDeque;
use std::io;

use super::items::Rows;
use super::template::LineCost;

/// How records are packed into lines.
pub struct Packing {
    pub cost: LineCost,
    /// The longest line GNU parallel allows (its -s, or what it computes).
    pub max_len: usize,
    /// At most this many records a line (-n, -N, -L).
    pub max_args: Option<usize>,
    /// -X, -m: the job slots the last records are spread over (None: no
    /// limit, a record a line); not with --xargs.
    pub spread: Option<Option<usize>>,
}

/// GNU parallel's usable command line length on Linux, as it computes it:
/// the longest `echo ccc...` it finds acceptable by its own search (within
/// 1% of the kernel's limit on one argument, 32 pages of 4 KiB), less 3 000
/// for its wrapping, halved for its hex encoding: 63 664.
pub fn gnu_max_len() -> usize {
    // An argument may hold 32 pages less its NUL; `/usr/bin/echo ` comes
    // first on GNU's test line.
    gnu_search(|len| len <= 32 * 4096 + 13)
}

/// GNU's search for the longest acceptable line, and what it makes of it.
fn gnu_search(acceptable: impl Fn(usize) -> bool) -> usize {
    let usable = |max: usize| max.saturating_sub(3000) / 2;
    let mut len = 324;
    let mut lower;
    loop {
        if len > 100_000_000 {
            return usable(len);
        }
        lower = len;
        len *= 16;
        if !acceptable(len) {
            break;
        }
    }
    let mut upper = len;
    loop {
        if lower == upper || lower + 1 == upper || lower as f64 / upper as f64 > 0.99 {
            return usable(lower);
        }
        let middle = (upper - lower) / 2 + lower;
        if acceptable(middle) {
            lower = middle;
        } else {
            upper = middle;
        }
    }
}

/// The packed lines: each item is the flat arguments of one job.
pub fn pack(rows: Rows, packing: Packing) -> Rows {
    Box::new(Pack {
        rows,
        ungot: VecDeque::new(),
        packing,
        spread_done: false,
        seq: 0,
        failed: false,
    })
}

struct Pack {
    rows: Rows,
    /// Records taken back from a full line, read again first.
    ungot: VecDeque<Vec<String>>,
    packing: Packing,
    spread_done: bool,
    seq: u64,
    failed: bool,
}

impl Pack {
    fn get(&mut self) -> Option<io::Result<Vec<String>>> {
        match self.ungot.pop_front() {
            Some(r) => Some(Ok(r)),
            None => self.rows.next(),
        }
    }

    /// Whether the input has ended (reads one record ahead, as GNU does).
    fn empty(&mut self) -> io::Result<bool> {
        if !self.ungot.is_empty() {
            return Ok(false);
        }
        match self.rows.next() {
            None => Ok(true),
            Some(Ok(r)) => {
                self.ungot.push_back(r);
                Ok(false)
            }
            Some(Err(e)) => Err(e),
        }
    }
}

impl Iterator for Pack {
    type Item = io::Result<Vec<String>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        self.seq += 1;
        let mut line: Vec<Vec<String>> = Vec::new();
        let mut lens = vec![0usize; self.packing.cost.exprs()];
        let add = |lens: &mut [usize], add: &[usize], plus: bool| {
            for (l, a) in lens.iter_mut().zip(add) {
                *l = if plus { *l + a } else { *l - a };
            }
        };
        while let Some(record) = self.get() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            };
            let rl = self.packing.cost.record_lens(&record, self.seq);
            add(&mut lens, &rl, true);
            line.push(record);
            let per_record = line[0].len();
            let len = self.packing.cost.len(&lens, line.len(), per_record);
            if len >= self.packing.max_len {
                let last = line.pop().unwrap_or_default();
                if line.is_empty() {
                    self.failed = true;
                    let shown: String = last.join(" ").chars().take(50).collect();
                    return Some(Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!(
                            "command line too long ({len} >= {}, GNU parallel's measure) at input {shown:?}; -s/--max-chars sets the limit",
                            self.packing.max_len
                        ),
                    )));
                }
                self.ungot.push_front(last);
                break;
            }
            if self.packing.max_args.is_some_and(|n| line.len() >= n) {
                break;
            }
        }
        if line.is_empty() {
            return None;
        }
        if let Some(slots) = self.packing.spread.filter(|_| !self.spread_done) {
            match self.empty() {
                Ok(true) => {
                    self.spread_done = true;
                    if line.len() > 1 {
                        let per = match slots {
                            Some(j) => line.len().div_ceil(j),
                            None => 1,
                        };
                        self.packing.max_args = Some(per);
                        for record in line.drain(per..).rev() {
                            self.ungot.push_front(record);
                        }
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
        Some(Ok(line.into_iter().flatten().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_parallels_length() {
        // `parallel --max-line-length-allowed` says 130329.
        assert_eq!(gnu_max_len(), (130_329 - 3000) / 2);
    }
}
