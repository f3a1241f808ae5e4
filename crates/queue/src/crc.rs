//! CRC-32C (Castagnoli), the checksum of every record on disk.
//!
//! CRC-32C is what iSCSI, ext4 metadata, Btrfs and SCTP use: it detects every burst error up to 32
//! bits and every odd number of flipped bits, which covers torn sectors and bit rot. A small
//! table-driven implementation (one 256-entry table built at compile time, one table lookup per
//! byte) is fast enough for the queue (a record is checksummed once when written and once when
//! read back on recovery) and saves a dependency; the known answers below pin it to the standard
//! (RFC 3720 appendix B.4).

/// The reflected Castagnoli polynomial 0x1EDC6F41.
const POLY: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// A running CRC-32C over bytes fed in pieces.
#[derive(Debug, Clone, Copy)]
pub struct Crc32c(u32);

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// A checksum of no bytes yet.
    pub fn new() -> Self {
        Self(!0)
    }

    /// Adds `bytes` to the checksum.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.0;
        for &b in bytes {
            crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.0 = crc;
    }

    /// The checksum of everything added so far.
    pub fn finish(self) -> u32 {
        !self.0
    }
}

/// The CRC-32C of `bytes`.
pub fn crc32c(bytes: &[u8]) -> u32 {
    let mut c = Crc32c::new();
    c.update(bytes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answers: the check value of the CRC catalogue and RFC 3720 §B.4.
    #[test]
    fn known_answers() {
        assert_eq!(crc32c(b""), 0);
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(crc32c(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&ascending), 0x46DD_794E);
        let descending: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&descending), 0x113F_DB5C);
    }

    #[test]
    fn pieces_equal_whole() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for split in [0, 1, 17, 500, 999, 1000] {
            let mut c = Crc32c::new();
            c.update(&data[..split]);
            c.update(&data[split..]);
            assert_eq!(c.finish(), crc32c(&data));
        }
    }

    #[test]
    fn one_flipped_bit_is_detected() {
        let data = b"the quick brown fox jumps over the lazy dog".to_vec();
        let good = crc32c(&data);
        for i in 0..data.len() * 8 {
            let mut bad = data.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_ne!(crc32c(&bad), good, "bit {i}");
        }
    }
}
