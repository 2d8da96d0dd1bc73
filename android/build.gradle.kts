// The Doorstep Android library (AAR): the Rust core cross-compiled for the phone ABIs with
// cargo-ndk, the Kotlin that uniffi generates from it, and the small Flow layer in src/main/kotlin.
//
// Not built on the project's CI machines (they have no Android SDK or NDK); the Kotlin it
// packages is the same code the JVM suite in tests/kotlin tests, generated with
// the workspace's uniffi.toml plus android = true for Android's object cleaner
// (scripts/uniffi-android-config).

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.2.21"
}

val workspace = rootDir.parentFile
val abis = listOf("arm64-v8a", "armeabi-v7a", "x86_64")
val jniLibsDir = layout.buildDirectory.dir("rustJniLibs")
val generatedDir = layout.buildDirectory.dir("generated/uniffi")

android {
    namespace = "org.doorstep.android"
    compileSdk = 35
    defaultConfig {
        minSdk = 24
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis }
    }
    sourceSets["main"].apply {
        kotlin.srcDir("src/main/kotlin")
        kotlin.srcDir(generatedDir)
        jniLibs.srcDir(jniLibsDir)
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
}

kotlin { jvmToolchain(17) }

dependencies {
    // JNA as an AAR: it carries libjnidispatch.so for each ABI.
    implementation("net.java.dev.jna:jna:5.18.1@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
}

// libdoorstep_ffi.so for each ABI, built with the Cargo profile `app` (no debug info, no test
// exports; the packaging strips its symbol table), into build/rustJniLibs/<abi>/ (cargo install cargo-ndk;
// rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android).
val cargoNdk by tasks.registering(Exec::class) {
    workingDir = workspace
    val targets = abis.flatMap { listOf("-t", it) }
    commandLine(listOf("cargo", "ndk") + targets +
        listOf("-o", jniLibsDir.get().asFile.path, "build", "--locked", "--profile", "app", "-p", "doorstep-ffi", "--lib"))
}

// The binding configuration: the workspace's uniffi.toml with android = true.
val uniffiConfig = layout.buildDirectory.file("uniffi-android.toml")
val uniffiAndroidConfigScript = workspace.resolve("scripts/uniffi-android-config")
val uniffiAndroidConfig by tasks.registering(Exec::class) {
    workingDir = workspace
    inputs.file(workspace.resolve("uniffi.toml"))
    inputs.file(uniffiAndroidConfigScript)
    outputs.file(uniffiConfig)
    commandLine(uniffiAndroidConfigScript.path)
    val out = uniffiConfig.get().asFile
    var stream: java.io.OutputStream? = null
    doFirst { stream = out.also { it.parentFile.mkdirs() }.outputStream().also { standardOutput = it } }
    doLast { stream?.close() }
}

// The Kotlin bindings, generated from the arm64 library with the embedded uniffi-bindgen.
val uniffiBindings by tasks.registering(Exec::class) {
    dependsOn(cargoNdk, uniffiAndroidConfig)
    workingDir = workspace
    commandLine(
        "cargo", "run", "--locked", "-p", "doorstep-ffi", "--features", "bindgen", "--bin", "uniffi-bindgen", "--",
        "generate", "--library", jniLibsDir.get().file("arm64-v8a/libdoorstep_ffi.so").asFile.path,
        "--language", "kotlin", "--config", uniffiConfig.get().asFile.path,
        "--out-dir", generatedDir.get().asFile.path, "--no-format",
    )
}

tasks.named("preBuild") { dependsOn(uniffiBindings) }
