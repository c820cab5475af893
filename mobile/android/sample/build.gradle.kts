// A sample app: a visitor chat over the :sotto module, the store key kept by the Android Keystore.
plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "dev.sotto.sample"
    compileSdk = 35

    defaultConfig {
        applicationId = "dev.sotto.sample"
        minSdk = 24
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        // Where the sample connects; set them for your relay and tenant.
        buildConfigField("String", "RELAY_URL", "\"https://relay.example.com\"")
        buildConfigField("String", "WIDGET_ID", "\"00000000000000000000000000000000\"")
        buildConfigField("String", "TEAM", "\"<team_id>:<fingerprint>\"")
    }

    buildFeatures {
        buildConfig = true
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
    implementation(project(":sotto"))
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.lifecycle:lifecycle-runtime-ktx:2.8.7")
}
