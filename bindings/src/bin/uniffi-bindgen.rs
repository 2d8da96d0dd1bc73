//! The uniffi binding generator, built from the same uniffi version as the library so that the
//! generated Kotlin, Swift and Python always match it. `scripts/build-bindings` runs it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
