//! The verification hot path of a warm file store allocates nothing on the Rust heap.
//! (Bundled SQLite allocates through libc malloc directly, which this counter does not see.)
//! Counted per thread, so other threads of the harness do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use dupify_keys::{Environment, KeySpec, KeyStore};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(|c| c.get())
}

#[test]
fn warm_verification_does_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open(dir.path().join("keys.db"), b"alloc pepper").unwrap();
    let keys: Vec<String> = (0..16)
        .map(|i| {
            store
                .create(KeySpec::new(format!("k{i}"), Environment::Live))
                .unwrap()
                .key
                .expose()
                .to_string()
        })
        .collect();
    // Warm: open the pooled read connection, create each key's usage slot.
    for k in &keys {
        store.authenticate([("X-API-Key", k.as_str())]).unwrap();
    }
    let before = allocs();
    let mut ok = 0;
    for i in 0..2_000 {
        let k = keys[i % keys.len()].as_str();
        let p = store.authenticate([("X-API-Key", k)]).unwrap();
        ok += usize::from(p.key_id() > 0);
    }
    let during = allocs() - before;
    assert_eq!(ok, 2_000);
    assert_eq!(
        during, 0,
        "{during} allocations in 2,000 warm verifications"
    );
    // The counter works: an allocation on this thread is seen.
    let v = std::hint::black_box(String::from("ten bytes!"));
    assert!(allocs() > before + during && v.len() == 10);
}
