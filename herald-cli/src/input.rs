//! `herald produce`'s input: read in large chunks on a thread of its own, each
//! chunk ending at a line end, so the send loop can cut records out of it as
//! `Bytes` slices without a copy or an allocation per line.
//!
//! A regular file (`--file`) is read into buffers the send loop hands back once
//! no record holds a slice of them ([`Chunks::done_with`]): the same memory over
//! and over, never zeroed. Anything else (stdin: a pipe, a terminal) is read as
//! it comes, a chunk per read that brings a line end, so that lines typed or
//! piped in slowly go at once.

use std::io::{self, Read};
use std::sync::mpsc as std_mpsc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

/// Bytes asked of the input at once (a file gives that much per read; a pipe
/// gives what it has, and the chunk holds just that).
pub const CHUNK: usize = 1 << 20;

/// Chunks read ahead of the send loop.
const READ_AHEAD: usize = 2;

/// Where the lines come from.
pub enum Input {
    /// A regular file.
    File(std::fs::File),
    /// Stdin, or a file that is not a regular one (a named pipe, say).
    Stream(Box<dyn Read + Send>),
}

/// The input's chunks, as the reader thread hands them over.
pub struct Chunks {
    rx: mpsc::Receiver<Bytes>,
    /// Buffers going back to the reader (regular files only).
    recycle: Option<std_mpsc::SyncSender<Vec<u8>>>,
}

impl Chunks {
    /// The next chunk; `None` at the end of the input.
    pub async fn next(&mut self) -> Option<Bytes> {
        self.rx.recv().await
    }

    /// The send loop is done with `chunk`: its buffer goes back to the reader
    /// when nothing else holds a slice of it (a key kept for the report does).
    pub fn done_with(&self, chunk: Bytes) {
        let Some(recycle) = &self.recycle else { return };
        if let Ok(mut buf) = chunk.try_into_mut() {
            buf.clear();
            let _ = recycle.try_send(Vec::from(buf));
        }
    }
}

/// Reads a regular file into chunks of whole lines, in buffers that come back
/// for reuse.
pub struct FileReader<R> {
    input: R,
    chunk: usize,
    delimiter: Vec<u8>,
    /// The start of a line the last chunk ended in the middle of.
    carry: Vec<u8>,
    recycled: Option<std_mpsc::Receiver<Vec<u8>>>,
    done: bool,
}

impl<R: Read> FileReader<R> {
    pub fn new(
        input: R,
        chunk: usize,
        recycled: Option<std_mpsc::Receiver<Vec<u8>>>,
        delimiter: &[u8],
    ) -> FileReader<R> {
        FileReader {
            input,
            chunk: chunk.max(2),
            delimiter: delimiter.to_vec(),
            carry: Vec::new(),
            recycled,
            done: false,
        }
    }

    /// The next chunk: whole lines, each ending in the delimiter, except that the
    /// file's last line may lack it. `None` at the end.
    pub fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let want = self.chunk.max(self.carry.len() * 2);
        let mut buf = match self.recycled.as_ref().and_then(|r| r.try_recv().ok()) {
            Some(b) if b.capacity() >= want => b,
            _ => Vec::with_capacity(want),
        };
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        loop {
            let start = buf.len();
            if buf.capacity() == start {
                buf.reserve(start); // a line longer than the buffer
            }
            let room = (buf.capacity() - start) as u64;
            // Until the buffer is full or the file ends; read_to_end reads a file
            // straight into the buffer's spare room, without zeroing it first.
            if (&mut self.input).take(room).read_to_end(&mut buf)? == 0 {
                self.done = true;
                return Ok((!buf.is_empty()).then(|| Bytes::from(buf)));
            }
            if let Some(end) = last_end(&buf, start, &self.delimiter) {
                self.carry.extend_from_slice(&buf[end..]);
                buf.truncate(end);
                return Ok(Some(Bytes::from(buf)));
            }
        }
    }
}

/// Reads a stream into chunks of whole lines, a chunk as soon as a read brings a
/// line end.
pub struct ChunkReader<R> {
    input: R,
    /// What was read and not yet handed out: at most the start of one line.
    buf: BytesMut,
    chunk: usize,
    delimiter: Vec<u8>,
    done: bool,
}

impl<R: Read> ChunkReader<R> {
    pub fn new(input: R, chunk: usize, delimiter: &[u8]) -> ChunkReader<R> {
        ChunkReader {
            input,
            buf: BytesMut::new(),
            chunk: chunk.max(2),
            delimiter: delimiter.to_vec(),
            done: false,
        }
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
            if let Some(end) = last_end(&self.buf, start, &self.delimiter) {
                return Ok(Some(self.buf.split_to(end).freeze()));
            }
        }
    }
}

/// Reads `input` on a thread of its own (a plain thread: one blocked on a
/// terminal must not keep the process from exiting) and hands its chunks over;
/// a read error ends the input, with the reason on stderr.
pub fn spawn_reader(input: Input, delimiter: &[u8]) -> io::Result<Chunks> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let (recycle, read) = match input {
        Input::File(f) => {
            // Room for every buffer there can be: the ones read ahead, the one the
            // send loop is on, and the one being filled.
            let (recycle, recycled) = std_mpsc::sync_channel(READ_AHEAD + 2);
            let mut reader = FileReader::new(f, CHUNK, Some(recycled), delimiter);
            let read: Box<dyn FnMut() -> io::Result<Option<Bytes>> + Send> =
                Box::new(move || reader.next_chunk());
            (Some(recycle), read)
        }
        Input::Stream(s) => {
            let mut reader = ChunkReader::new(s, CHUNK, delimiter);
            let read: Box<dyn FnMut() -> io::Result<Option<Bytes>> + Send> =
                Box::new(move || reader.next_chunk());
            (None, read)
        }
    };
    std::thread::Builder::new().name("herald-input".into()).spawn(move || send_chunks(read, tx))?;
    Ok(Chunks { rx, recycle })
}

fn send_chunks(mut read: Box<dyn FnMut() -> io::Result<Option<Bytes>> + Send>, tx: mpsc::Sender<Bytes>) {
    loop {
        match read() {
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
}

/// Where the last delimiter in `buf` that ends past `start` ends (what was read
/// before `start` has no whole delimiter, but may hold the start of one).
fn last_end(buf: &[u8], start: usize, delimiter: &[u8]) -> Option<usize> {
    let from = start.saturating_sub(delimiter.len() - 1);
    if let [d] = delimiter {
        return memchr::memrchr(*d, &buf[from..]).map(|i| from + i + 1);
    }
    memchr::memmem::rfind(&buf[from..], delimiter).map(|i| from + i + delimiter.len())
}

/// The lines of a chunk: (start, end) of each line's text, without its
/// delimiter (and, when the delimiter is `\n`, without a `\r` before it).
pub fn lines<'a>(chunk: &'a [u8], delimiter: &'a [u8]) -> impl Iterator<Item = (usize, usize)> + 'a {
    let mut start = 0;
    let finder = memchr::memmem::Finder::new(delimiter);
    let crlf = delimiter == b"\n";
    std::iter::from_fn(move || {
        if start >= chunk.len() {
            return None;
        }
        let line = start;
        let end = match finder.find(&chunk[start..]) {
            Some(i) => {
                start += i + delimiter.len();
                let end = line + i;
                if crlf && end > line && chunk[end - 1] == b'\r' { end - 1 } else { end }
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

    /// Every line, through both readers (the file reader reusing its buffers as
    /// the send loop would hand them back), and how many chunks the stream
    /// reader made.
    fn all_lines(data: &[u8], step: usize, chunk: usize) -> (Vec<Vec<u8>>, usize) {
        all_records(data, step, chunk, b"\n")
    }

    fn all_records(data: &[u8], step: usize, chunk: usize, d: &[u8]) -> (Vec<Vec<u8>>, usize) {
        let mut r = ChunkReader::new(Trickle { data, step }, chunk, d);
        let (mut out, mut chunks) = (Vec::new(), 0);
        while let Some(c) = r.next_chunk().unwrap() {
            chunks += 1;
            assert!(c.ends_with(d) || !data.ends_with(d), "chunks end at a line end");
            out.extend(lines(&c, d).map(|(s, e)| c[s..e].to_vec()));
        }
        let (recycle, recycled) = std_mpsc::sync_channel(4);
        let chunks_back = Chunks { rx: mpsc::channel(1).1, recycle: Some(recycle) };
        let mut f = FileReader::new(Trickle { data, step }, chunk, Some(recycled), d);
        let mut from_file = Vec::new();
        while let Some(c) = f.next_chunk().unwrap() {
            assert!(c.ends_with(d) || !data.ends_with(d), "chunks end at a line end");
            from_file.extend(lines(&c, d).map(|(s, e)| c[s..e].to_vec()));
            chunks_back.done_with(c);
        }
        assert_eq!(from_file, out, "both readers see the same lines");
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

    #[test]
    fn records_split_at_any_delimiter_even_across_reads() {
        let mut data = Vec::new();
        let mut want = Vec::new();
        for i in 0..300 {
            let record = format!("r{i}\nwith a newline\r\n{}", "z".repeat(i % 11));
            data.extend_from_slice(record.as_bytes());
            data.extend_from_slice(b"<|>");
            want.push(record.into_bytes());
        }
        for (step, chunk) in [(1, 64), (2, 64), (5, 32), (100_000, 64), (100_000, 1 << 20)] {
            assert_eq!(all_records(&data, step, chunk, b"<|>").0, want, "step {step} chunk {chunk}");
        }
        // A last record without the delimiter, an empty one, and a delimiter that is
        // not a line end: \r stays.
        let (got, _) = all_records(b"a\r;;b\r", 1, 64, b";");
        assert_eq!(got, vec![b"a\r".to_vec(), b"".to_vec(), b"b\r".to_vec()]);
        assert_eq!(all_records(b"x\0y\0", 3, 64, b"\0").0, vec![b"x".to_vec(), b"y".to_vec()]);
    }
}
