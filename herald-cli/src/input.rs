//! `herald produce`'s input: read in large chunks on a thread of its own, each
//! chunk ending at a line end, so the send loop can cut records out of it as
//! `Bytes` slices without a copy or an allocation per line.

use std::io::{self, Read};

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// Bytes asked of the input at once (a file gives that much per read; a pipe
/// gives what it has, and the chunk holds just that).
pub const CHUNK: usize = 1 << 20;

/// Chunks read ahead of the send loop.
const READ_AHEAD: usize = 2;

/// Reads `input` into chunks of whole lines.
pub struct ChunkReader<R> {
    input: R,
    /// What was read and not yet handed out: at most the start of one line.
    buf: BytesMut,
    chunk: usize,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(input: R, chunk: usize) -> ChunkReader<R> {
        ChunkReader { input, buf: BytesMut::new(), chunk: chunk.max(2), done: false }
    }

    /// The next chunk: whole lines, each ending in `\n`, except that the input's
    /// last line may lack it. `None` at the end of the input. A chunk comes back as
    /// soon as a read brings a line end, so lines typed or piped in slowly are sent
    /// at once.
    pub fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.done {
                return Ok(None);
            }
            let start = self.buf.len();
            // A new allocation when the current one is (nearly) used up; it takes the
            // partial line along, and grows for a line longer than a chunk. Handed-out
            // chunks keep the old allocation alive until their records are gone.
            if self.buf.capacity() - start < self.chunk / 16 {
                let mut next = BytesMut::with_capacity(self.chunk.max(start * 2));
                next.extend_from_slice(&self.buf);
                self.buf = next;
            }
            let room = self.buf.capacity() - start;
            self.buf.resize(start + room, 0);
            let n = match self.input.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
            };
            self.buf.truncate(start + n);
            if n == 0 {
                self.done = true;
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.buf.split().freeze()));
            }
            if let Some(i) = memchr::memrchr(b'\n', &self.buf[start..]) {
                return Ok(Some(self.buf.split_to(start + i + 1).freeze()));
            }
        }
    }
}

/// Reads `input` on a thread of its own (a plain thread: one blocked on a
/// terminal must not keep the process from exiting) and hands its chunks over;
/// a read error ends the input, with the reason on stderr.
pub fn spawn_reader(input: Box<dyn Read + Send>) -> io::Result<mpsc::Receiver<Bytes>> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    std::thread::Builder::new().name("herald-input".into()).spawn(move || {
        let mut reader = ChunkReader::new(input, CHUNK);
        loop {
            match reader.next_chunk() {
                Ok(Some(chunk)) => {
                    if tx.blocking_send(chunk).is_err() {
                        return; // the send loop stopped (interrupted)
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    eprintln!("herald: reading input: {e}");
                    return;
                }
            }
        }
    })?;
    Ok(rx)
}

/// The lines of a chunk: (start, end) of each line's text, without its `\n` (or
/// `\r\n`).
pub fn lines(chunk: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= chunk.len() {
            return None;
        }
        let line = start;
        let end = match memchr::memchr(b'\n', &chunk[start..]) {
            Some(i) => {
                start += i + 1;
                let end = line + i;
                if end > line && chunk[end - 1] == b'\r' { end - 1 } else { end }
            }
            None => {
                start = chunk.len();
                chunk.len()
            }
        };
        Some((line, end))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gives its bytes `step` at a time, like a pipe fed slowly.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn all_lines(data: &[u8], step: usize, chunk: usize) -> (Vec<Vec<u8>>, usize) {
        let mut r = ChunkReader::new(Trickle { data, step }, chunk);
        let (mut out, mut chunks) = (Vec::new(), 0);
        while let Some(c) = r.next_chunk().unwrap() {
            chunks += 1;
            assert!(c.ends_with(b"\n") || !data.ends_with(b"\n"), "chunks end at a line end");
            out.extend(lines(&c).map(|(s, e)| c[s..e].to_vec()));
        }
        (out, chunks)
    }

    #[test]
    fn lines_split_across_reads_and_chunks_come_back_whole() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..500 {
            let line = format!("line {i} {}", "x".repeat(i % 37));
            data.extend_from_slice(line.as_bytes());
            data.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
            want.push(line.into_bytes());
        }
        for (step, chunk) in [(1, 64), (7, 64), (1000, 64), (100_000, 64), (100_000, 1 << 20), (13, 4096)] {
            let (got, _) = all_lines(&data, step, chunk);
            assert_eq!(got, want, "step {step} chunk {chunk}");
        }
    }

    #[test]
    fn a_line_longer_than_a_chunk_and_a_last_line_without_newline() {
        let long = "y".repeat(1000);
        let data = format!("a\n{long}\n\nb\rc\r");
        let (got, chunks) = all_lines(data.as_bytes(), 100, 64);
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), long.into_bytes(), b"".to_vec(), b"b\rc\r".to_vec()];
        assert_eq!(got, want, "only a \\r before \\n is dropped");
        assert!(chunks >= 2);
        assert_eq!(all_lines(b"", 10, 64).0, Vec::<Vec<u8>>::new());
        assert_eq!(all_lines(b"\n", 10, 64).0, vec![Vec::<u8>::new()]);
    }
}
