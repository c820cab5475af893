// The Sotto Android library (:sotto) and a sample app (:sample). Build the native libraries
// first: ./build-jni-libs.sh (cargo-ndk), then gradle :sotto:assembleRelease.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "sotto-android"
include(":sotto", ":sample")
