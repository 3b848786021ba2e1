//! A reader over fuzz input that never fails: past the end every number is 0 and
//! every slice is empty, so any input decodes to *some* structured request.

/// Consumes fuzz bytes front to back.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    /// Reads from `data`.
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data }
    }

    /// The bytes not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        let got = self.take(N);
        out[..got.len()].copy_from_slice(got);
        out
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    pub fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.array())
    }

    pub fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.array())
    }

    pub fn u128(&mut self) -> u128 {
        u128::from_be_bytes(self.array())
    }

    /// `None` or up to `max_len` bytes, as a length byte decides.
    pub fn opt_bytes(&mut self, max_len: usize) -> Option<Vec<u8>> {
        let l = self.u8();
        if l == 0xff { None } else { Some(self.take(usize::from(l) % (max_len + 1)).to_vec()) }
    }
}
