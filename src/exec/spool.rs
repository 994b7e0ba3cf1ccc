//! Grouped output beyond its memory budget goes to one shared, unlinked
//! temporary file: each chunk is written at an offset allocated atomically,
//! so concurrent jobs never lock and the run holds one descriptor for all of
//! them. Printed regions are released with hole punching.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

/// The spill file of a run.
pub struct Spool {
    file: File,
    end: AtomicU64,
}

/// A region of the spool holding part of one job's output.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub offset: u64,
    pub len: u64,
}

impl Spool {
    /// A new spool in the temp dir ($TMPDIR), already unlinked.
    pub fn new() -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile()?,
            end: AtomicU64::new(0),
        })
    }

    /// Appends `data`; returns where it went.
    pub fn write(&self, data: &[u8]) -> io::Result<Segment> {
        let offset = self.end.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.file.write_all_at(data, offset)?;
        Ok(Segment {
            offset,
            len: data.len() as u64,
        })
    }

    /// Copies `segments` to `out`, in order.
    pub fn copy_to(&self, segments: &[Segment], out: &mut dyn Write) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        for seg in segments {
            let mut done = 0u64;
            while done < seg.len {
                let n = (seg.len - done).min(buf.len() as u64) as usize;
                self.file.read_exact_at(&mut buf[..n], seg.offset + done)?;
                out.write_all(&buf[..n])?;
                done += n as u64;
            }
        }
        Ok(())
    }

    /// The last `limit` bytes of `segments` (for a report's tail).
    pub fn tail(&self, segments: &[Segment], limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut want = limit as u64;
        for seg in segments.iter().rev() {
            if want == 0 {
                break;
            }
            let take = seg.len.min(want);
            let mut buf = vec![0u8; take as usize];
            self.file
                .read_exact_at(&mut buf, seg.offset + seg.len - take)?;
            buf.extend_from_slice(&out);
            out = buf;
            want -= take;
        }
        Ok(out)
    }

    /// Gives the disk space of printed segments back.
    pub fn release(&self, segments: &[Segment]) {
        use rustix::fs::{FallocateFlags, fallocate};
        for seg in segments {
            // Best effort: a file system without hole punching keeps the space
            // until the run ends and the unlinked file is closed.
            let _ = fallocate(
                &self.file,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                seg.offset,
                seg.len,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip_in_order() {
        let spool = Spool::new().unwrap();
        let a = spool.write(b"hello ").unwrap();
        let b = spool.write(b"world").unwrap();
        let mut out = Vec::new();
        spool.copy_to(&[a, b], &mut out).unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(spool.tail(&[a, b], 8).unwrap(), b"lo world");
        spool.release(&[a]);
        let mut out = Vec::new();
        spool.copy_to(&[b], &mut out).unwrap();
        assert_eq!(out, b"world");
    }
}
