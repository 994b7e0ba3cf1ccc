//! Matrix expansion: the cartesian product of a job's `matrix` keys, and the
//! `{key}` placeholders it fills.
//!
//! A placeholder is `{ident}` with `ident` = `[A-Za-z_][A-Za-z0-9_]*`. Shell
//! syntax is left alone: `${VAR}` (a `$` before the brace), `{}` and
//! `{print $1}` are not placeholders. `{{` and `}}` write literal braces.

use std::collections::BTreeSet;

/// One combination of matrix values, in key order: (key, value).
pub type Combination<'a> = Vec<(&'a str, &'a str)>;

/// How many combinations `keys` make; None past `usize::MAX`.
pub fn count(keys: &[(String, Vec<String>)]) -> Option<usize> {
    keys.iter()
        .try_fold(1usize, |n, (_, values)| n.checked_mul(values.len()))
}

/// All combinations, made one at a time (a million-job matrix is not held
/// twice); the first key varies slowest. No keys: one empty combination.
pub fn combinations(keys: &[(String, Vec<String>)]) -> impl Iterator<Item = Combination<'_>> {
    (0..count(keys).unwrap_or(usize::MAX)).map(move |mut n| {
        let mut combo = vec![("", ""); keys.len()];
        for (slot, (key, values)) in combo.iter_mut().zip(keys).rev() {
            *slot = (key.as_str(), values[n % values.len()].as_str());
            n /= values.len();
        }
        combo
    })
}

enum Piece<'a> {
    Text(&'a str),
    Placeholder(&'a str),
}

fn pieces(text: &str) -> Vec<Piece<'_>> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'{' if bytes.get(i + 1) == Some(&b'{') => {
                out.push(Piece::Text(&text[start..i + 1]));
                i += 2;
                start = i;
            }
            b'}' if bytes.get(i + 1) == Some(&b'}') => {
                out.push(Piece::Text(&text[start..i + 1]));
                i += 2;
                start = i;
            }
            b'{' if i == 0 || bytes[i - 1] != b'$' => {
                let rest = &text[i + 1..];
                let ident_len = rest
                    .char_indices()
                    .take_while(|&(j, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (j > 0 && c.is_ascii_digit())
                    })
                    .count();
                if ident_len > 0 && rest.as_bytes().get(ident_len) == Some(&b'}') {
                    out.push(Piece::Text(&text[start..i]));
                    out.push(Piece::Placeholder(&rest[..ident_len]));
                    i += ident_len + 2;
                    start = i;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out.push(Piece::Text(&text[start..]));
    out
}

/// The placeholder names used in `text`.
pub fn placeholders(text: &str) -> BTreeSet<String> {
    pieces(text)
        .into_iter()
        .filter_map(|p| match p {
            Piece::Placeholder(name) => Some(name.to_string()),
            Piece::Text(_) => None,
        })
        .collect()
}

/// `text` with its placeholders filled from `combo`. Placeholders without a
/// value are left as written (validation reports them first).
pub fn fill(text: &str, combo: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text) {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Placeholder(name) => match combo.iter().find(|(k, _)| *k == name) {
                Some((_, value)) => out.push_str(value),
                None => {
                    out.push('{');
                    out.push_str(name);
                    out.push('}');
                }
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combo<'a>(pairs: &[(&'a str, &'a str)]) -> Combination<'a> {
        pairs.to_vec()
    }

    #[test]
    fn product_first_key_slowest() {
        let keys = vec![
            (
                "os".to_string(),
                vec!["linux".to_string(), "mac".to_string()],
            ),
            ("n".to_string(), vec!["1".to_string(), "2".to_string()]),
        ];
        let names: Vec<String> = combinations(&keys).map(|c| fill("{os}-{n}", &c)).collect();
        assert_eq!(names, ["linux-1", "linux-2", "mac-1", "mac-2"]);
    }

    #[test]
    fn shell_syntax_is_not_a_placeholder() {
        assert!(placeholders("echo ${HOME} {} awk '{print $1}' {{n}}").is_empty());
        assert_eq!(
            placeholders("sleep {n}; echo {os_2}"),
            BTreeSet::from(["n".to_string(), "os_2".to_string()])
        );
    }

    #[test]
    fn fill_replaces_and_unescapes() {
        let c = combo(&[("n", "3")]);
        assert_eq!(
            fill("sleep {n} && echo {{n}} ${n}", &c),
            "sleep 3 && echo {n} ${n}"
        );
        assert_eq!(fill("{missing}", &c), "{missing}");
    }
}
