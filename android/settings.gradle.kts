// The Doorstep Android library, built on its own: `./gradlew assembleRelease` in android/
// (needs the Android SDK, the NDK and cargo-ndk; see the README's "Android" section).
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

rootProject.name = "doorstep-android"
