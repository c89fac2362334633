// swift-tools-version: 6.1
// libFuzzer targets over the routes.yaml loader and the request body parser. Separate from the
// main package: everything here is compiled with -sanitize=fuzzer.
//   cd fuzz && swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld
//   .build/debug/FuzzConfig -max_total_time=60 corpus/config
//   .build/debug/FuzzRequest -max_total_time=60 corpus/request
// (lld: gold fails on the sanitizer's debug info.) New interesting inputs are added to the
// corpus folders; copy them elsewhere first if they should not be committed.
import PackageDescription

let package = Package(
    name: "switchyard-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "switchyard"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(name: "FuzzConfig", dependencies: ["FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard")]),
        .executableTarget(
            name: "FuzzRequest",
            dependencies: ["FuzzDriver", .product(name: "SwitchyardCore", package: "switchyard"), .product(name: "NIOCore", package: "swift-nio")]
        ),
    ]
)
