//! GNU parallel's options that `drover exec` lacks. `parallel ARGS` becomes
//! `drover exec -- ARGS`, so any of them may come; each is refused before
//! anything runs, named with what it means to GNU parallel, never ignored
//! or taken for a drover option of the same letter.

use clap::{Args as _, Command};

use super::exec::ExecArgs;

/// GNU parallel's options drover does not implement (all of GNU parallel
/// 20221122's but those drover has): their names (long, or one letter),
/// what they do in GNU parallel, and what to do instead where drover has a
/// way.
const UNSUPPORTED: &[(&[&str], &str, Option<&str>)] = &[
    // Several arguments per command line.
    (
        &["exit", "x"],
        "exit if a command line is longer than -s allows",
        None,
    ),
    // xargs compatibility.
    (
        &["eof", "e", "E"],
        "an end-of-file string that ends the input",
        None,
    ),
    // Replacement strings.
    (
        &["rpl"],
        "define a replacement string as a perl expression",
        None,
    ),
    (
        &["parens"],
        "other brackets than {= =} for perl expressions",
        None,
    ),
    (
        &["extensionreplace", "er"],
        "another string for {.}",
        Some("use {.}"),
    ),
    (
        &["basenamereplace", "bnr"],
        "another string for {/}",
        Some("use {/}"),
    ),
    (
        &["dirnamereplace", "dnr"],
        "another string for {//}",
        Some("use {//}"),
    ),
    (
        &["basenameextensionreplace", "bner"],
        "another string for {/.}",
        Some("use {/.}"),
    ),
    (&["seqreplace"], "another string for {#}", Some("use {#}")),
    (&["slotreplace"], "another string for {%}", Some("use {%}")),
    // Input.
    (&["csv"], "read input as CSV columns", None),
    (
        &["linkinputsource", "xapplyinputsource"],
        "link given input sources",
        Some("link a source to the one before it with :::+ or ::::+"),
    ),
    (&["arg-sep", "argsep"], "another separator than :::", None),
    (
        &["arg-file-sep", "argfilesep"],
        "another separator than ::::",
        None,
    ),
    (
        &["skip-first-line", "skipfirstline"],
        "skip the first input line",
        None,
    ),
    (&["shebang", "hashbang"], "run as a #! interpreter", None),
    (
        &["_pipe-means-argfiles"],
        "GNU parallel's internal option",
        None,
    ),
    (&["filter"], "run only jobs whose filter is true", None),
    (
        &["total-jobs", "totaljobs", "total"],
        "the number of jobs, for --bar and --eta",
        None,
    ),
    // Output.
    (
        &["output-as-files", "outputasfiles", "files"],
        "print the names of files holding the output",
        None,
    ),
    (&["ctag"], "colour tags", Some("use --tag")),
    (
        &["ctag-string", "ctagstring"],
        "coloured tag string",
        Some("use --tag"),
    ),
    (&["color", "colour"], "colourise output", None),
    (
        &[
            "color-failed",
            "colour-failed",
            "colorfailed",
            "colourfailed",
            "color-fail",
            "colour-fail",
            "colorfail",
            "colourfail",
            "cf",
        ],
        "colour failed jobs red",
        None,
    ),
    (
        &["latest-line", "latestline", "ll"],
        "print the latest line of each job",
        Some("use --line-buffer"),
    ),
    (
        &["no-keep-order", "nokeeporder", "nok", "no-k"],
        "undo an earlier --keep-order",
        Some("leave out -k"),
    ),
    (
        &["silent"],
        "do not print the commands (the default)",
        Some("drover exec prints commands only with -v or -t: leave --silent out"),
    ),
    (&["tmux"], "run each job in a tmux window", None),
    (
        &["tmux-pane", "tmuxpane"],
        "run each job in a tmux pane",
        None,
    ),
    (&["tty"], "give jobs the terminal", Some("use -u")),
    (&["open-tty", "o"], "give jobs the terminal", Some("use -u")),
    (
        &["tmpdir", "tempdir"],
        "the folder for temporary files",
        Some("set TMPDIR"),
    ),
    (
        &[
            "use-compress-program",
            "compress-program",
            "usecompressprogram",
            "compressprogram",
        ],
        "compress temporary files",
        None,
    ),
    (
        &[
            "use-decompress-program",
            "decompress-program",
            "usedecompressprogram",
            "decompressprogram",
        ],
        "decompress temporary files",
        None,
    ),
    (&["compress"], "compress temporary files", None),
    // Job control.
    (&["noswap"], "start no job while the machine swaps", None),
    (&["memsuspend"], "suspend jobs when memory runs low", None),
    (
        &["limit"],
        "a command that decides whether to start more jobs",
        None,
    ),
    (
        &["term-seq", "termseq"],
        "the signals sent to a job that timed out",
        Some("use --kill-grace (SIGTERM, then SIGKILL after it)"),
    ),
    (&["interactive", "p"], "ask before running each job", None),
    (
        &["process-slot-var", "processslotvar"],
        "an environment variable set to the slot number",
        Some("use {%}"),
    ),
    (
        &["work-dir", "workdir", "wd"],
        "run the jobs in this folder",
        Some("cd there first"),
    ),
    (&["semaphore"], "work as a counting semaphore (sem)", None),
    (
        &["semaphore-timeout", "semaphoretimeout", "st"],
        "semaphore timeout",
        None,
    ),
    (
        &["semaphore-name", "semaphorename", "id"],
        "semaphore name",
        None,
    ),
    (&["fg"], "run a semaphore job in the foreground", None),
    (&["bg"], "run a semaphore job in the background", None),
    (&["wait"], "wait for the semaphore's jobs", None),
    // --pipe.
    (
        &["recstart"],
        "the string that starts a --pipe record",
        None,
    ),
    (&["recend"], "the string that ends a --pipe record", None),
    (
        &["regexp", "regex"],
        "--recstart and --recend are regular expressions",
        None,
    ),
    (
        &["remove-rec-sep", "removerecsep", "rrs"],
        "remove the record separators",
        None,
    ),
    (
        &["block-timeout", "blocktimeout", "bt"],
        "a timeout for reading a --pipe block",
        None,
    ),
    (
        &["cat"],
        "hand each block to the job as a temporary file",
        None,
    ),
    (
        &["fifo"],
        "hand each block to the job as a named pipe",
        None,
    ),
    (
        &["pipe-part", "pipepart"],
        "cut a file into parts without reading it",
        Some("use --pipe with the file on stdin"),
    ),
    (&["tee"], "give all the input to every job", None),
    (
        &["shard"],
        "send lines with the same key to the same job",
        None,
    ),
    (&["bin"], "send lines to jobs by a number", None),
    (
        &["group-by", "groupby"],
        "keep lines with the same value in one block",
        None,
    ),
    // Remote computers.
    (&["sshlogin", "S"], "run jobs on remote computers", None),
    (
        &["sshloginfile", "slf"],
        "remote computers from a file",
        None,
    ),
    (&["ssh"], "the command for remote access", None),
    (&["ssh-delay", "sshdelay"], "wait between ssh starts", None),
    (&["controlmaster", "M"], "ssh ControlMaster", None),
    (&["onall"], "run every job on every remote computer", None),
    (
        &["nonall"],
        "run the command on every remote computer",
        None,
    ),
    (
        &["filter-hosts", "filterhosts", "filter-host"],
        "drop remote computers that are down",
        None,
    ),
    (
        &[
            "transfer-file",
            "transferfile",
            "transfer-files",
            "transferfiles",
            "tf",
        ],
        "copy files to remote computers",
        None,
    ),
    (&["return"], "copy files back from remote computers", None),
    (&["trc"], "--transfer --return --cleanup", None),
    (
        &["transfer"],
        "copy the input files to remote computers",
        None,
    ),
    (
        &["cleanup"],
        "remove copied files from remote computers",
        None,
    ),
    (
        &["basefile", "bf"],
        "copy a file to every remote computer first",
        None,
    ),
    (&["rsync-opts", "rsyncopts"], "options for rsync", None),
    (
        &["hgrp", "hostgrp", "hostgroup", "hostgroups"],
        "host groups",
        None,
    ),
    (&["sql"], "an SQL job queue (retired)", None),
    (
        &["sql-master", "sqlmaster"],
        "an SQL job queue",
        Some("drover serve --store postgres://... is drover's job queue"),
    ),
    (
        &["sql-worker", "sqlworker"],
        "an SQL job queue",
        Some("drover serve --store postgres://... is drover's job queue"),
    ),
    (
        &["sql-and-worker", "sqlandworker"],
        "an SQL job queue",
        Some("drover serve --store postgres://... is drover's job queue"),
    ),
    // Information, set-up and the rest.
    (
        &["version", "V"],
        "print GNU parallel's version",
        Some("drover --version"),
    ),
    (
        &["min-version", "minversion"],
        "check GNU parallel's version",
        None,
    ),
    (
        &["number-of-cpus", "numberofcpus"],
        "print the number of CPUs",
        Some("nproc"),
    ),
    (
        &["number-of-sockets", "numberofsockets"],
        "print the number of CPU sockets",
        None,
    ),
    (
        &["number-of-cores", "numberofcores"],
        "print the number of CPU cores",
        Some("nproc"),
    ),
    (
        &["number-of-threads", "numberofthreads"],
        "print the number of CPU threads",
        Some("nproc"),
    ),
    (
        &[
            "use-sockets-instead-of-threads",
            "usesocketsinsteadofthreads",
        ],
        "count CPU sockets for -j",
        None,
    ),
    (
        &["use-cores-instead-of-threads", "usecoresinsteadofthreads"],
        "count CPU cores for -j",
        None,
    ),
    (
        &["use-cpus-instead-of-cores", "usecpusinsteadofcores"],
        "count CPUs for -j",
        None,
    ),
    (
        &["max-line-length-allowed", "maxlinelengthallowed"],
        "print the longest command line allowed",
        None,
    ),
    (
        &["show-limits", "showlimits"],
        "print the system's limits",
        None,
    ),
    (
        &["shell-quote", "shellquote", "shell_quote"],
        "print the command shell-quoted",
        None,
    ),
    (
        &["shell-completion", "shellcompletion"],
        "print shell completion code",
        None,
    ),
    (
        &["template", "tmpl"],
        "fill replacement strings in a file",
        None,
    ),
    (&["embed"], "embed GNU parallel in a script", None),
    (
        &["record-env", "recordenv"],
        "record the environment for env_parallel",
        None,
    ),
    (&["session"], "record names for env_parallel", None),
    (
        &["profile", "J"],
        "read options from a profile",
        Some("drover reads no profile: give the options"),
    ),
    (&["gnu"], "behave as GNU parallel", Some("leave --gnu out")),
    (&["tollef"], "behave as Tollef's parallel (retired)", None),
    (
        &["debug", "D"],
        "GNU parallel's debugging output",
        Some("drover's own logging is `drover -v exec ...`"),
    ),
    (&["bug"], "GNU parallel's bug report", None),
    (
        &["ctrl-c", "ctrlc", "no-ctrl-c", "no-ctrlc", "noctrlc"],
        "Ctrl-C handling (retired)",
        None,
    ),
    (&["_parset"], "code for parset", None),
    (&["_test"], "GNU parallel's tests", None),
    (
        &["g", "T", "U", "B", "W", "Y", "H"],
        "a retired GNU parallel option",
        None,
    ),
];

/// How `drover exec` reads one of its own options.
struct Own {
    names: Vec<String>,
    takes_value: bool,
    /// The value may be left out (`-i`, `--replace`): then the next word is
    /// its value only if it does not start with `-`, as Getopt::Long's.
    optional: bool,
    /// An optional value that is a number (`-l`): a next word that is no
    /// number is not its value.
    numeric: bool,
}

/// drover exec's options, from its clap definition: long names and aliases,
/// and single letters.
fn own_options() -> Vec<Own> {
    let mut cmd = ExecArgs::augment_args(Command::new("exec"));
    cmd.build();
    cmd.get_arguments()
        .filter(|a| !a.is_positional())
        .map(|a| {
            let mut names: Vec<String> = a
                .get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default())
                .map(str::to_string)
                .collect();
            names.extend(
                a.get_short()
                    .into_iter()
                    .chain(a.get_all_short_aliases().unwrap_or_default())
                    .map(String::from),
            );
            Own {
                numeric: names.iter().any(|n| n == "max-lines"),
                names,
                takes_value: a.get_action().takes_values(),
                optional: a.get_num_args().is_some_and(|n| n.min_values() == 0),
            }
        })
        .collect()
}

impl Own {
    /// Whether the word after this option (written without its value) is
    /// its value.
    fn takes_next(&self, next: Option<&String>) -> bool {
        match next {
            None => false,
            Some(_) if !self.optional => true,
            Some(word) if self.numeric => super::exec::is_number(word),
            Some(word) => !word.starts_with('-'),
        }
    }
}

fn unsupported(
    name: &str,
) -> Option<&'static (&'static [&'static str], &'static str, Option<&'static str>)> {
    UNSUPPORTED.iter().find(|(names, ..)| names.contains(&name))
}

fn refusal(written: &str, meaning: &str, instead: Option<&str>) -> String {
    let mut text =
        format!("{written} (GNU parallel: {meaning}) is not supported by drover exec yet");
    if let Some(instead) = instead {
        text.push_str("; ");
        text.push_str(instead);
    }
    text
}

/// Checks the options of `drover exec` (the arguments after `exec`, up to
/// the command): a GNU parallel option drover lacks, or an option neither
/// knows, is an error naming it.
pub fn check_options(args: &[String]) -> Result<(), String> {
    let own = own_options();
    let own_named = |name: &str| own.iter().find(|o| o.names.iter().any(|n| n == name));
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg == "--" || arg == "-" || !arg.starts_with('-') {
            // The command starts here.
            return Ok(());
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, _)) => (n, true),
                None => (long, false),
            };
            if let Some(o) = own_named(name) {
                if o.takes_value && !value && o.takes_next(args.get(i + 1)) {
                    i += 1;
                }
            } else if let Some((_, meaning, instead)) = unsupported(name) {
                return Err(refusal(&format!("--{name}"), meaning, *instead));
            } else {
                return Err(unknown_long(name, &own));
            }
        } else {
            // A cluster of single letters, as `-kv` or `-j4`.
            for (at, letter) in arg[1..].char_indices() {
                let letter = letter.to_string();
                if let Some(o) = own_named(&letter) {
                    if o.takes_value {
                        // The value is the rest of the cluster, or the next word.
                        if at + letter.len() + 1 == arg.len() && o.takes_next(args.get(i + 1)) {
                            i += 1;
                        }
                        break;
                    }
                } else if let Some((_, meaning, instead)) = unsupported(&letter) {
                    return Err(refusal(&format!("-{letter}"), meaning, *instead));
                } else {
                    return Err(format!(
                        "-{letter} is not an option of drover exec, nor of GNU parallel; see drover exec --help"
                    ));
                }
            }
        }
        i += 1;
    }
    Ok(())
}

/// An unknown `--name`: GNU parallel takes a unique abbreviation of one of
/// its options, drover wants it whole.
fn unknown_long(name: &str, own: &[Own]) -> String {
    let mut matches: Vec<String> = Vec::new();
    for o in own {
        if o.names.iter().any(|n| n.len() > 1 && n.starts_with(name)) {
            matches.push(o.names[0].clone());
        }
    }
    for (names, ..) in UNSUPPORTED {
        if names.iter().any(|n| n.len() > 1 && n.starts_with(name)) {
            matches.push(names[0].to_string());
        }
    }
    match matches.as_slice() {
        [one] => match unsupported(one) {
            Some((_, meaning, instead)) => format!(
                "--{name}: GNU parallel reads it as --{one}, and {}",
                refusal(&format!("--{one}"), meaning, *instead)
            ),
            None => format!("--{name}: drover exec takes its options whole: write --{one}"),
        },
        _ => format!(
            "--{name} is not an option of drover exec, nor of GNU parallel; see drover exec --help"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<(), String> {
        check_options(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn drover_options_and_the_command_pass() {
        assert_eq!(check(&["-j", "-1", "-kv", "--tag", "echo", "-S"]), Ok(()));
        assert_eq!(check(&["-l", "echo", "-S"]), Ok(()));
        assert_eq!(check(&["-l", "2", "-X", "echo"]), Ok(()));
        assert_eq!(
            check(&["-j4", "--timeout=3", "--block-size", "1k", "--", "-X"]),
            Ok(())
        );
        assert_eq!(check(&["-d", "X", "-a", "f", "echo"]), Ok(()));
    }

    #[test]
    fn gnu_options_drover_lacks_are_named() {
        for (args, named) in [
            (&["-S", "h", "echo"][..], "-S (GNU parallel: "),
            (&["-kx", "echo"], "-x (GNU parallel: "),
            (&["--tmux", "echo"], "--tmux (GNU parallel: "),
            (&["--tmpdir=out", "echo"], "--tmpdir (GNU parallel: "),
            (
                &["-j", "2", "-p", "echo"],
                "-p (GNU parallel: ask before running each job",
            ),
            (&["--version"], "--version (GNU parallel: "),
            (&["--slf", "f", "echo"], "--slf (GNU parallel: "),
            (
                &["--memsusp", "1G", "echo"],
                "GNU parallel reads it as --memsuspend",
            ),
            (&["--resul", "out", "echo"], "write --results"),
            (&["--colse", ",", "echo"], "write --colsep"),
            (&["-l", "2", "-S", "h", "echo"], "-S (GNU parallel: "),
            (&["--keep", "echo"], "write --keep-order"),
            (
                &["-c", "echo"],
                "-c is not an option of drover exec, nor of GNU parallel",
            ),
            (&["--frobnicate", "echo"], "--frobnicate is not an option"),
        ] {
            let e = check(args).expect_err("refused");
            assert!(e.contains(named), "{args:?}: {e}");
        }
    }

    #[test]
    fn every_gnu_name_is_drovers_or_refused_once() {
        let own = own_options();
        let mut seen = std::collections::HashSet::new();
        for (names, ..) in UNSUPPORTED {
            for n in *names {
                assert!(seen.insert(*n), "{n} twice");
                assert!(
                    !own.iter().any(|o| o.names.iter().any(|m| m == n)),
                    "{n} is drover's and refused"
                );
            }
        }
    }
}
