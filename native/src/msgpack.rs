//! The msgpack forms msgspec writes (smallest int, str, array and map headers), and a reader
//! of any valid form of the types the state uses.

pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Writer { buf: Vec::with_capacity(512) }
    }

    pub fn int(&mut self, v: i64) {
        let b = &mut self.buf;
        if (0..128).contains(&v) {
            b.push(v as u8);
        } else if (-32..0).contains(&v) {
            b.push(v as i8 as u8);
        } else if v > 0 {
            if v <= 0xff {
                b.push(0xcc);
                b.push(v as u8);
            } else if v <= 0xffff {
                b.push(0xcd);
                b.extend_from_slice(&(v as u16).to_be_bytes());
            } else if v <= 0xffff_ffff {
                b.push(0xce);
                b.extend_from_slice(&(v as u32).to_be_bytes());
            } else {
                b.push(0xcf);
                b.extend_from_slice(&(v as u64).to_be_bytes());
            }
        } else if v >= -128 {
            b.push(0xd0);
            b.push(v as i8 as u8);
        } else if v >= -32768 {
            b.push(0xd1);
            b.extend_from_slice(&(v as i16).to_be_bytes());
        } else if v >= -(1i64 << 31) {
            b.push(0xd2);
            b.extend_from_slice(&(v as i32).to_be_bytes());
        } else {
            b.push(0xd3);
            b.extend_from_slice(&v.to_be_bytes());
        }
    }

    pub fn opt_int(&mut self, v: Option<i64>) {
        match v {
            Some(v) => self.int(v),
            None => self.nil(),
        }
    }

    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    pub fn boolean(&mut self, v: bool) {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
    }

    pub fn str(&mut self, s: &str) {
        let n = s.len();
        let b = &mut self.buf;
        if n < 32 {
            b.push(0xa0 | n as u8);
        } else if n <= 0xff {
            b.push(0xd9);
            b.push(n as u8);
        } else if n <= 0xffff {
            b.push(0xda);
            b.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            b.push(0xdb);
            b.extend_from_slice(&(n as u32).to_be_bytes());
        }
        b.extend_from_slice(s.as_bytes());
    }

    pub fn opt_str(&mut self, s: &Option<String>) {
        match s {
            Some(s) => self.str(s),
            None => self.nil(),
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(n, 0x90, 0xdc);
    }

    pub fn map(&mut self, n: usize) {
        self.header(n, 0x80, 0xde);
    }

    fn header(&mut self, n: usize, fix: u8, wide: u8) {
        let b = &mut self.buf;
        if n < 16 {
            b.push(fix | n as u8);
        } else if n <= 0xffff {
            b.push(wide);
            b.extend_from_slice(&(n as u16).to_be_bytes());
        } else {
            b.push(wide + 1);
            b.extend_from_slice(&(n as u32).to_be_bytes());
        }
    }
}

pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

pub type R<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.data.len()
    }

    pub fn peek(&self) -> R<u8> {
        self.data.get(self.pos).copied().ok_or_else(|| "truncated".to_string())
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        if self.pos + n > self.data.len() {
            return Err("truncated".into());
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn be(&mut self, n: usize) -> R<u64> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
    }

    pub fn int(&mut self) -> R<i64> {
        let m = self.byte()?;
        Ok(match m {
            0x00..=0x7f => m as i64,
            0xe0..=0xff => m as i8 as i64,
            0xcc => self.be(1)? as i64,
            0xcd => self.be(2)? as i64,
            0xce => self.be(4)? as i64,
            0xcf => {
                let v = self.be(8)?;
                if v > i64::MAX as u64 {
                    return Err("integer out of range".into());
                }
                v as i64
            }
            0xd0 => self.be(1)? as u8 as i8 as i64,
            0xd1 => self.be(2)? as u16 as i16 as i64,
            0xd2 => self.be(4)? as u32 as i32 as i64,
            0xd3 => self.be(8)? as i64,
            _ => return Err(format!("expected an integer, got 0x{m:02x}")),
        })
    }

    pub fn is_nil(&mut self) -> R<bool> {
        if self.peek()? == 0xc0 {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    pub fn opt_int(&mut self) -> R<Option<i64>> {
        if self.is_nil()? {
            return Ok(None);
        }
        self.int().map(Some)
    }

    pub fn boolean(&mut self) -> R<bool> {
        match self.byte()? {
            0xc2 => Ok(false),
            0xc3 => Ok(true),
            m => Err(format!("expected a bool, got 0x{m:02x}")),
        }
    }

    pub fn str(&mut self) -> R<String> {
        let m = self.byte()?;
        let n = match m {
            0xa0..=0xbf => (m & 0x1f) as usize,
            0xd9 => self.be(1)? as usize,
            0xda => self.be(2)? as usize,
            0xdb => self.be(4)? as usize,
            _ => return Err(format!("expected a string, got 0x{m:02x}")),
        };
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| "invalid UTF-8".to_string())
    }

    pub fn opt_str(&mut self) -> R<Option<String>> {
        if self.is_nil()? {
            return Ok(None);
        }
        self.str().map(Some)
    }

    pub fn array(&mut self) -> R<usize> {
        let m = self.byte()?;
        Ok(match m {
            0x90..=0x9f => (m & 0x0f) as usize,
            0xdc => self.be(2)? as usize,
            0xdd => self.be(4)? as usize,
            _ => return Err(format!("expected an array, got 0x{m:02x}")),
        })
    }

    pub fn map(&mut self) -> R<usize> {
        let m = self.byte()?;
        Ok(match m {
            0x80..=0x8f => (m & 0x0f) as usize,
            0xde => self.be(2)? as usize,
            0xdf => self.be(4)? as usize,
            _ => return Err(format!("expected a map, got 0x{m:02x}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn ints_take_msgspecs_smallest_form_and_read_back() {
        // what msgspec.msgpack.encode writes for each
        let cases: [(i64, &str); 20] = [
            (0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"),
            (65535, "cdffff"), (65536, "ce00010000"), (4_294_967_295, "ceffffffff"),
            (4_294_967_296, "cf0000000100000000"), (i64::MAX, "cf7fffffffffffffff"),
            (-1, "ff"), (-32, "e0"), (-33, "d0df"), (-128, "d080"), (-129, "d1ff7f"),
            (-32768, "d18000"), (-32769, "d2ffff7fff"), (-2_147_483_648, "d280000000"),
            (-2_147_483_649, "d3ffffffff7fffffff"), (i64::MIN, "d38000000000000000"),
        ];
        for (v, form) in cases {
            let mut w = Writer::new();
            w.int(v);
            assert_eq!(hex(&w.buf), form, "{v}");
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.int(), Ok(v));
            assert!(r.at_end());
        }
        // any valid form reads, a uint64 past i64 does not
        assert_eq!(Reader::new(&[0xcd, 0x00, 0x05]).int(), Ok(5));
        assert!(Reader::new(&[0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0]).int().is_err());
        assert!(Reader::new(&[0xcd, 0x00]).int().is_err());
    }

    #[test]
    fn strings_arrays_and_maps_take_their_headers() {
        for (n, head) in [(0, "a0"), (31, "bf"), (32, "d920"), (255, "d9ff"), (256, "da0100")] {
            let text = "a".repeat(n);
            let mut w = Writer::new();
            w.str(&text);
            assert!(hex(&w.buf).starts_with(head), "{n}");
            assert_eq!(Reader::new(&w.buf).str(), Ok(text));
        }
        let mut w = Writer::new();
        w.array(15);
        w.array(16);
        w.map(16);
        w.map(70_000);
        assert_eq!(hex(&w.buf), "9fdc0010de0010df00011170");
        let mut r = Reader::new(&w.buf);
        assert_eq!((r.array(), r.array(), r.map(), r.map()), (Ok(15), Ok(16), Ok(16), Ok(70_000)));
        let mut w = Writer::new();
        w.opt_int(None);
        w.opt_str(&Some("x".to_string()));
        w.boolean(true);
        let mut r = Reader::new(&w.buf);
        assert_eq!((r.opt_int(), r.opt_str(), r.boolean()), (Ok(None), Ok(Some("x".into())), Ok(true)));
        assert!(Reader::new(&[0xa2, 0xff, 0xfe]).str().is_err()); // not UTF-8
    }
}
