//! One pepper convention for every host: a key created by a host that read the pepper from a
//! file (with the editor's trailing newline) verifies in a host that was given the same hex
//! text some other way, on the same database file.

use dupify_keys::{parse_key, Environment, Error, KeySpec, KeyStore, Pepper, PepperSource};

const HEX: &str = "3f7a0c91d2b84e6a5c0e9f1b27d4a8e6c3b5f09a1d7e2c4b8a6f0e3d5c7b9a12";

#[test]
fn a_file_pepper_with_a_newline_and_the_bare_hex_text_are_the_same_pepper() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let file = dir.path().join("pepper");
    std::fs::write(&file, format!("{HEX}\n")).unwrap();

    let from_file = Pepper::read_file(&file).unwrap();
    let store = KeyStore::open(&db, from_file.as_bytes()).unwrap();
    let created = store
        .create(KeySpec::new("cli", Environment::Live))
        .unwrap();
    let key = created.key.expose().to_string();
    drop(store);

    let bare = Pepper::parse(HEX.as_bytes()).unwrap();
    let store = KeyStore::open(&db, bare.as_bytes()).unwrap();
    let who = store.verify(parse_key(&key).unwrap()).unwrap();
    assert_eq!(who.key_id(), created.record.id);
    drop(store);

    // The HMAC key is the text, not the decoded bytes, so the digits' case matters.
    let upper = Pepper::parse(HEX.to_uppercase().as_bytes()).unwrap();
    let store = KeyStore::open(&db, upper.as_bytes()).unwrap();
    assert!(matches!(
        store.verify(parse_key(&key).unwrap()),
        Err(Error::UnknownApiKey)
    ));
}

#[test]
fn stores_of_the_previous_cli_keep_verifying() {
    // That CLI wrote 32 random bytes as hex plus a newline to `<db>.pepper` and keyed the
    // HMAC with the file's contents trimmed of whitespace.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("keys.db");
    let default = Pepper::default_path(&db);
    std::fs::write(&default, format!("{HEX}\n")).unwrap();
    let legacy_pepper = std::fs::read(&default).unwrap();
    let store = KeyStore::open(&db, legacy_pepper.trim_ascii()).unwrap();
    let key = store
        .create(KeySpec::new("old", Environment::Test))
        .unwrap()
        .key
        .expose()
        .to_string();
    drop(store);

    let (pepper, source) = Pepper::resolve(Some(&default), &db, false).unwrap();
    assert_eq!(source, PepperSource::File(default));
    let store = KeyStore::open(&db, pepper.as_bytes()).unwrap();
    store.verify(parse_key(&key).unwrap()).unwrap();
}
