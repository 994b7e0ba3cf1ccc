//! Reporting: the live view and summary a person reads (`human`), and the
//! JSON report scripts read (`json`), and where a report goes (`target`).

pub mod human;
pub mod joblog;
pub mod json;
pub mod printer;
pub mod target;
