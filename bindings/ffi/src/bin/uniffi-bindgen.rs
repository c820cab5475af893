//! The uniffi bindings generator, built against the same uniffi version as the library so the
//! generated Kotlin, Swift and Python match its scaffolding. `scripts/bindings.sh` runs it.

fn main() {
    uniffi::uniffi_bindgen_main()
}
