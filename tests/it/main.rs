//! drover's integration tests: one file per behaviour, each a module of
//! this one test binary, so a change to the library relinks one binary, not
//! sixty. Each test runs the real drover binary on real processes; as the
//! tests share this process, none changes its environment, working
//! directory or signal handling, and a test measuring drover's memory has
//! GNU time record it (`common::PeakRss`): any child of this process starts
//! with this process's peak RSS as its own. One file's tests:
//! `cargo test --test it exec_follow::`.

mod common;
mod serve_common;

mod check_plan;
mod color;
mod completions_and_man;
mod config_errors;
mod env_and_cwd;
mod escaped_descendants;
mod exec_closed_stdout;
mod exec_delimiter;
mod exec_discard_to_dev_null;
mod exec_fd_budget;
mod exec_follow;
mod exec_grouped_memory;
mod exec_interrupt;
mod exec_line_buffer;
mod exec_lost_output;
mod exec_memfree_and_load;
mod exec_misc;
mod exec_pipe_splice;
mod exec_pipe_streaming;
mod exec_refuses_gnu_syntax;
mod exec_report_and_joblog;
mod exec_report_targets;
mod exec_retries;
mod exec_round_robin;
mod exec_spool_budget;
mod exec_timeout;
mod exec_tmpdir;
mod exec_tmpdir_full;
mod exec_vs_parallel;
mod fail_fast;
mod fd_budget;
mod fd_table;
mod fleet;
mod interrupt;
mod interrupt_during_fail_fast;
mod killed_drover;
mod large_plan_warning;
mod leaked_descendant;
mod matrix_and_needs;
mod max_parallel_limit;
mod non_utf8_output;
mod ok_codes;
mod output_destinations;
mod output_flood;
mod output_to_fifo;
mod path_lookup;
mod pid1;
mod pipe_between_jobs;
mod pipeline_backpressure;
mod pipeline_config;
mod pipeline_flow;
mod pipeline_interrupt;
mod pipeline_output_errors;
mod pipeline_reads_to_end;
mod pipeline_stream_workers;
mod report_format;
mod report_targets;
mod retries;
mod run_show_output;
mod serve_api;
mod serve_batches;
mod serve_flood;
mod serve_health;
mod serve_restart;
mod spawn_descriptors;
mod spawn_failures;
mod spawn_posix_fallback;
mod stdin_feeding;
mod stdin_shared_across_matrix;
mod stopped_drover;
mod thousand_sleeps;
mod timeout_kills_group;
mod zero_timeout;
