//! Reporting: the live view and summary a person reads (`human`), and the
//! JSON report scripts read (`json`).

pub mod human;
pub mod joblog;
pub mod json;
pub mod printer;
