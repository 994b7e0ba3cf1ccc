//! The job graph: `needs` patterns resolved to jobs, pipe-joined jobs grouped
//! into units, and cycles found (and printed as a path).

use globset::Glob;

use super::{JobName, JobSpec, StdinSpec, Unit};

/// The jobs a `needs` pattern names: an exact name, or a glob (`sleep-*`).
/// A job never matches its own glob.
pub fn resolve_need(names: &[JobName], pattern: &str, own: usize) -> Result<Vec<usize>, String> {
    if let Some(i) = names.iter().position(|n| n.as_str() == pattern) {
        if i == own {
            return Err(format!("job `{pattern}` cannot need itself"));
        }
        return Ok(vec![i]);
    }
    let is_glob = pattern.contains(['*', '?', '[', '{']);
    if !is_glob {
        return Err(format!("no job is named `{pattern}`"));
    }
    let matcher = Glob::new(pattern)
        .map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))?
        .compile_matcher();
    let found: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|&(i, n)| i != own && matcher.is_match(n.as_str()))
        .map(|(i, _)| i)
        .collect();
    if found.is_empty() {
        return Err(format!("the pattern `{pattern}` matches no job"));
    }
    Ok(found)
}

#[derive(Debug)]
pub enum GraphError {
    /// A job needs a job it is joined to by a pipe: they must start together.
    NeedsWithinPipe { job: usize, needed: usize },
    /// A dependency cycle, as job indices: `a → b → a`.
    Cycle(Vec<usize>),
}

/// Groups jobs joined by `stdin.from` into units, in file order of their
/// first job.
pub fn build_units(jobs: &[JobSpec]) -> Result<(Vec<Unit>, Vec<usize>), GraphError> {
    // Union-find over pipe edges.
    let mut parent: Vec<usize> = (0..jobs.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, job) in jobs.iter().enumerate() {
        if let StdinSpec::From(src) = job.stdin {
            let (a, b) = (root(&mut parent, i), root(&mut parent, src));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut unit_of = vec![usize::MAX; jobs.len()];
    let mut units: Vec<Unit> = Vec::new();
    for i in 0..jobs.len() {
        let r = root(&mut parent, i);
        if unit_of[r] == usize::MAX {
            unit_of[r] = units.len();
            units.push(Unit {
                jobs: Vec::new(),
                needs: Vec::new(),
            });
        }
        let u = unit_of[r];
        unit_of[i] = u;
        units[u].jobs.push(i);
    }
    for (i, job) in jobs.iter().enumerate() {
        let u = unit_of[i];
        for &n in &job.needs {
            if unit_of[n] == u {
                return Err(GraphError::NeedsWithinPipe { job: i, needed: n });
            }
            if !units[u].needs.contains(&n) {
                units[u].needs.push(n);
            }
        }
    }
    if let Some(cycle) = find_cycle(jobs, &units, &unit_of) {
        return Err(GraphError::Cycle(cycle));
    }
    Ok((units, unit_of))
}

/// A cycle among units, reported as the jobs along it.
fn find_cycle(jobs: &[JobSpec], units: &[Unit], unit_of: &[usize]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        Done,
    }
    let mut mark = vec![Mark::New; units.len()];
    // Iterative DFS; the stack holds (unit, next edge index, job that led here).
    for start in 0..units.len() {
        if mark[start] != Mark::New {
            continue;
        }
        let mut stack: Vec<(usize, usize, usize)> = vec![(start, 0, units[start].jobs[0])];
        mark[start] = Mark::OnStack;
        while let Some(&mut (u, ref mut edge, _)) = stack.last_mut() {
            if let Some(&needed) = units[u].needs.get(*edge) {
                *edge += 1;
                let v = unit_of[needed];
                match mark[v] {
                    Mark::New => {
                        mark[v] = Mark::OnStack;
                        stack.push((v, 0, needed));
                    }
                    Mark::OnStack => {
                        // The path from v's entry on the stack back to v.
                        let pos = stack.iter().position(|&(w, _, _)| w == v).unwrap_or(0);
                        let mut path: Vec<usize> = Vec::new();
                        // The job in v's unit that needs the next unit along the path.
                        for window in stack[pos..].windows(2) {
                            let (from_unit, to_job) = (window[0].0, window[1].2);
                            path.push(needing_job(jobs, units, from_unit, to_job));
                        }
                        path.push(needing_job(jobs, units, u, needed));
                        path.push(path[0]);
                        return Some(path);
                    }
                    Mark::Done => {}
                }
            } else {
                mark[u] = Mark::Done;
                stack.pop();
            }
        }
    }
    None
}

/// The job of `unit` whose `needs` names `needed`.
fn needing_job(jobs: &[JobSpec], units: &[Unit], unit: usize, needed: usize) -> usize {
    units[unit]
        .jobs
        .iter()
        .copied()
        .find(|&j| jobs[j].needs.contains(&needed))
        .unwrap_or(units[unit].jobs[0])
}
