// swift-tools-version:5.9
// The Doorstep core for iOS apps: the Rust library as an XCFramework (build it first with
// ios/build-xcframework on a Mac with Xcode), the Swift that uniffi generates from it
// (Sources/DoorstepCore, written by the same script), and a thin idiomatic layer
// (Sources/DoorstepAsync). No Swift toolchain exists on the project's CI machines: the shared API
// is tested through the Kotlin suite (tests/kotlin), and this layer is kept as thin.
import PackageDescription

let package = Package(
    name: "Doorstep",
    platforms: [.iOS(.v15)],
    products: [
        .library(name: "Doorstep", targets: ["DoorstepAsync", "DoorstepCore"]),
    ],
    targets: [
        .binaryTarget(name: "DoorstepCoreFFI", path: "DoorstepCoreFFI.xcframework"),
        .target(name: "DoorstepCore", dependencies: ["DoorstepCoreFFI"], path: "Sources/DoorstepCore"),
        .target(name: "DoorstepAsync", dependencies: ["DoorstepCore"], path: "Sources/DoorstepAsync"),
    ]
)
