// The Sotto client SDK as an Android library: the generated Kotlin bindings
// (src/main/kotlin/dev/sotto/sotto.kt, from scripts/bindings.sh) and libsotto_ffi.so per ABI
// (src/main/jniLibs/, from ../build-jni-libs.sh).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.sotto"
    compileSdk = 35

    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the library through JNA; the aar carries JNA's own native part.
    api("net.java.dev.jna:jna:5.15.0@aar")
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
}
