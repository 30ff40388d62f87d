//! A small BoltDB (bbolt 1.3 file format) writer: enough to hand Trivy a vulnerability DB
//! with a few buckets. No crate writes this format outside Go, so the tests carry their own.
//!
//! Layout written: pages 0 and 1 meta, page 2 an empty freelist, then one leaf page (plus
//! overflow pages if it is large) per bucket, children before their parent. Little-endian.

use std::collections::BTreeMap;

const PAGE: usize = 4096;
const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
const BRANCH_OR_LEAF_HEADER: usize = 16;
const ELEMENT: usize = 16;
const LEAF: u16 = 0x02;
const META: u16 = 0x04;
const FREELIST: u16 = 0x10;
const BUCKET_FLAG: u32 = 0x01;

/// A bucket: keys to values or to nested buckets. Keys are kept sorted bytewise, as bbolt needs.
#[derive(Default, Debug, Clone)]
pub struct Bucket(pub BTreeMap<Vec<u8>, Entry>);

#[derive(Debug, Clone)]
pub enum Entry {
    Value(Vec<u8>),
    Bucket(Bucket),
}

impl Bucket {
    pub fn new() -> Bucket {
        Bucket::default()
    }

    /// The nested bucket `name`, created if missing.
    pub fn bucket(&mut self, name: &str) -> &mut Bucket {
        let e = self
            .0
            .entry(name.as_bytes().to_vec())
            .or_insert_with(|| Entry::Bucket(Bucket::new()));
        match e {
            Entry::Bucket(b) => b,
            Entry::Value(_) => panic!("`{name}` is a value, not a bucket"),
        }
    }

    pub fn put(&mut self, key: &str, value: impl Into<Vec<u8>>) {
        self.0.insert(key.as_bytes().to_vec(), Entry::Value(value.into()));
    }
}

/// The bytes of a database file whose root bucket holds `root`'s entries.
pub fn to_bytes(root: &Bucket) -> Vec<u8> {
    // Pages 0-2 are fixed; buckets go from page 3 on.
    let mut file = vec![0u8; 3 * PAGE];
    let root_page = write_bucket(&mut file, root);
    let high_water = (file.len() / PAGE) as u64;
    for (id, txid) in [(0u64, 1u64), (1, 2)] {
        let p = &mut file[id as usize * PAGE..];
        page_header(p, id, META, 0, 0);
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&MAGIC.to_le_bytes());
        m.extend_from_slice(&VERSION.to_le_bytes());
        m.extend_from_slice(&(PAGE as u32).to_le_bytes());
        m.extend_from_slice(&0u32.to_le_bytes()); // flags
        m.extend_from_slice(&root_page.to_le_bytes()); // root bucket: page
        m.extend_from_slice(&0u64.to_le_bytes()); // root bucket: sequence
        m.extend_from_slice(&2u64.to_le_bytes()); // freelist page
        m.extend_from_slice(&high_water.to_le_bytes());
        m.extend_from_slice(&txid.to_le_bytes());
        assert_eq!(m.len(), 56);
        let sum = fnv1a64(&m);
        m.extend_from_slice(&sum.to_le_bytes());
        p[BRANCH_OR_LEAF_HEADER..BRANCH_OR_LEAF_HEADER + m.len()].copy_from_slice(&m);
    }
    page_header(&mut file[2 * PAGE..], 2, FREELIST, 0, 0);
    file
}

/// Writes `b` (children first) as a leaf at the end of `file`; returns its page id.
fn write_bucket(file: &mut Vec<u8>, b: &Bucket) -> u64 {
    let mut items: Vec<(&[u8], u32, Vec<u8>)> = Vec::new();
    for (k, e) in &b.0 {
        match e {
            Entry::Value(v) => items.push((k, 0, v.clone())),
            Entry::Bucket(child) => {
                let page = write_bucket(file, child);
                let mut v = page.to_le_bytes().to_vec();
                v.extend_from_slice(&0u64.to_le_bytes()); // sequence
                items.push((k, BUCKET_FLAG, v));
            }
        }
    }
    let data_len: usize = items.iter().map(|(k, _, v)| k.len() + v.len()).sum();
    let size = BRANCH_OR_LEAF_HEADER + items.len() * ELEMENT + data_len;
    let pages = size.div_ceil(PAGE).max(1);
    let id = (file.len() / PAGE) as u64;
    let start = file.len();
    file.resize(start + pages * PAGE, 0);
    let p = &mut file[start..];
    page_header(p, id, LEAF, items.len() as u16, (pages - 1) as u32);
    let mut data = BRANCH_OR_LEAF_HEADER + items.len() * ELEMENT;
    for (i, (k, flags, v)) in items.iter().enumerate() {
        let at = BRANCH_OR_LEAF_HEADER + i * ELEMENT;
        let pos = (data - at) as u32;
        p[at..at + 4].copy_from_slice(&flags.to_le_bytes());
        p[at + 4..at + 8].copy_from_slice(&pos.to_le_bytes());
        p[at + 8..at + 12].copy_from_slice(&(k.len() as u32).to_le_bytes());
        p[at + 12..at + 16].copy_from_slice(&(v.len() as u32).to_le_bytes());
        p[data..data + k.len()].copy_from_slice(k);
        data += k.len();
        p[data..data + v.len()].copy_from_slice(v);
        data += v.len();
    }
    id
}

fn page_header(p: &mut [u8], id: u64, flags: u16, count: u16, overflow: u32) {
    p[0..8].copy_from_slice(&id.to_le_bytes());
    p[8..10].copy_from_slice(&flags.to_le_bytes());
    p[10..12].copy_from_slice(&count.to_le_bytes());
    p[12..16].copy_from_slice(&overflow.to_le_bytes());
}

pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
